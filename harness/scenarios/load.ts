// Loading a scenario file: YAML with positions, validation (schema plus whole-file
// references), then normalisation into the typed Suite the runner works with.
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { badInput, formatWhere, type Where } from '../common/errors.js';
import { REQUIREMENT_PATTERN, REQUIREMENT_SYNTAX } from '../config/kconfig.js';
import { validate } from '../common/schema.js';
import { loadYamlFile, parseYaml, type Located, type YamlPath } from '../common/yaml.js';
import { loadSelftestRecipe } from '../image/recipe.js';
import { actionOf, type ActionItem } from './actions.js';
import { refine } from './combinators.js';
import { expandSuite } from './expand.js';
import { expectationFor } from './expect.js';
import { substitute, varRefs } from './vars.js';
import { checkReferences, isExpectByVar, resolveCell, suiteSchema, type RawCase, type RawExpect, type RawIdentity, type RawMatrix, type RawMatrixStep, type RawStep, type RawSuite } from './schema.js';
import { guestPathProblem, suiteFileProblem } from '../common/paths.js';
import type { Action, Capture, CapsSpec, CaseDef, Expectation, HelperDef, Identity, MatrixDef, Step, Suite, SuiteFile } from './types.js';

const DEFAULT_CASE_TIMEOUT_S = 60;
export const ROOT: Identity = { name: 'root', uid: 0, gid: 0 };
export const NOBODY: Identity = { name: 'nobody', uid: 65534, gid: 65534 };

/** Schema check, then reference checks, so one error lists every problem with its place. */
const fullSchema = refine(suiteSchema, (raw, _path, out) => checkReferences(raw, out));

export async function loadSuite(file: string): Promise<Suite> {
  const suite = suiteFrom(await loadYamlFile(file, 'scenario file', 'check the path to the scenario file'));
  const wanted = suiteSelftests(suite);
  if (wanted.length) {
    const { recipe, file: recipeFile } = await loadSelftestRecipe();
    const known = Object.keys(recipe.programs);
    for (const f of suite.files) {
      if ('selftest' in f.from && !known.includes(f.from.selftest)) {
        throw badInput(`no selftest "${f.from.selftest}" in ${recipeFile} (it builds: ${known.join(', ')})`, { ...(f.where ? { where: f.where } : {}), hint: 'name a program of images/recipes/selftests.yaml, or add it there' });
      }
    }
  }
  return suite;
}

/** The selftests a suite's files name (built by harness/image/selftests.ts). */
export const suiteSelftests = (suite: Suite): string[] => suite.files.flatMap((f) => ('selftest' in f.from ? [f.from.selftest] : []));

export function parseSuite(text: string, file: string): Suite {
  return suiteFrom(parseYaml(text, file));
}

function suiteFrom(doc: Located): Suite {
  const raw = validate(doc, fullSchema, 'scenario file');
  const suite = normalise(raw, doc);
  // Expansion can still find a problem only the expanded list shows: duplicate case names.
  const seen = new Map<string, Where | undefined>();
  for (const c of expandSuite(suite)) {
    if (seen.has(c.name)) {
      const first = seen.get(c.name);
      throw badInput(`two cases are named "${c.name}"${first ? ` (the first at ${formatWhere(first)})` : ''}`, {
        where: c.where ?? { file: doc.file },
        hint: 'case names identify results and known issues: make each one unique',
      });
    }
    seen.set(c.name, c.where);
  }
  return suite;
}

// ---------------------------------------------------------------------------------------

export function describeCaps(caps: CapsSpec | undefined): string {
  if (caps === undefined) return '';
  if (caps === 'all') return 'all capabilities';
  if (caps === 'none') return 'no capabilities';
  if (Array.isArray(caps)) return caps.length ? `only ${caps.join(', ')}` : 'no capabilities';
  return `without ${caps.drop.join(', ')}`;
}

function identityOf(v: RawIdentity | undefined, named: Record<string, Identity>): Identity {
  if (v === undefined) return ROOT;
  if (typeof v === 'string') return v === 'root' ? ROOT : v === 'nobody' ? NOBODY : named[v]!;
  const uid = v.uid;
  const id: Identity = { name: '', uid, gid: v.gid ?? uid };
  if (v.groups !== undefined) id.groups = v.groups;
  if (v.caps !== undefined) id.caps = v.caps;
  id.name = v.description ?? [`uid ${uid}`, describeCaps(id.caps)].filter(Boolean).join(' ');
  return id;
}

const actionsOf = (v: ActionItem | ActionItem[] | undefined): Action[] => (v === undefined ? [] : Array.isArray(v) ? v.map(actionOf) : [actionOf(v)]);

export function expectationOf(v: RawExpect | undefined): Expectation {
  if (v === undefined || v === 'ok') return { outcome: 'ok' };
  if (v === 'error') return { outcome: 'error' };
  if (v === 'any') return { outcome: 'any' };
  if (typeof v === 'string') return { outcome: 'errno', errno: v };
  const e: Expectation = { outcome: 'ok' };
  if (v.errno !== undefined) {
    e.outcome = 'errno';
    e.errno = v.errno;
  } else if (v.error === true) e.outcome = 'error';
  else if (v.exit !== undefined) {
    e.outcome = 'exit';
    e.exit = v.exit;
  }
  if (v.output !== undefined || v.match !== undefined) {
    e.output = {};
    if (v.output !== undefined) e.output.equals = String(v.output);
    if (v.match !== undefined) e.output.match = v.match;
  }
  if (v.values !== undefined) {
    e.values = {};
    for (const [k, x] of Object.entries(v.values)) e.values[k] = typeof x === 'object' ? { match: x.match } : { equals: String(x) };
  }
  return e;
}

function capturesOf(v: RawStep['capture']): Capture[] {
  return Object.entries(v ?? {}).map(([variable, spec]) => (typeof spec === 'string' ? { variable, field: spec } : { variable, field: spec.field, ...(spec.match !== undefined ? { match: spec.match } : {}) }));
}

interface Ctx {
  doc: Located;
  /** The suite's variables with their default values. */
  vars: Record<string, string>;
  identities: Record<string, Identity>;
  helpers: Record<string, HelperDef>;
  timeoutS: number;
}

function stepOf(s: RawStep | RawMatrixStep, path: YamlPath, ctx: Ctx): Step {
  const where = ctx.doc.where(path);
  const step: Step = {
    kind: s.sh !== undefined || s.tap !== undefined ? 'sh' : 'agent',
    as: identityOf(s.as, ctx.identities),
    pre: actionsOf(s.pre),
    actions: [],
    expect: { outcome: 'ok' },
    capture: capturesOf(s.capture),
    where,
  };
  if (isExpectByVar(s.expect)) {
    const by = { variable: s.expect.by, when: Object.fromEntries(Object.entries(s.expect.when).map(([value, e]) => [value, expectationOf(e)])) };
    const expect = expectationFor(by, ctx.vars);
    if (!expect) throw noExpectationFor(by, ctx.vars, where, ctx.doc.where([...path, 'expect', 'when']));
    step.expectBy = by;
    step.expect = expect;
  } else step.expect = expectationOf(s.expect);
  if (s.name !== undefined) step.name = s.name;
  if (s.timeout !== undefined) step.timeoutMs = s.timeout * 1000;
  if (s.load !== undefined) {
    const { each, ...rest } = s.load;
    step.load = { ...rest, ...(each !== undefined ? { each: String(each) } : {}) };
  }
  if (s.sh !== undefined) step.sh = s.sh;
  else if (s.tap !== undefined) {
    step.sh = s.tap;
    step.tap = true;
    // A TAP program's exit status says whether some test point failed; the points say which.
    step.expect = { outcome: 'any' };
  } else if (s.do !== undefined) step.actions = actionsOf(s.do);
  else if (s.spawn !== undefined) {
    const sp = s.spawn;
    const helperName = typeof sp === 'string' ? sp : sp.helper;
    const instance = typeof sp === 'string' ? sp : (sp.name ?? helperName);
    const h = ctx.helpers[helperName]!;
    if (s.as === undefined) step.as = h.as;
    step.pre = [...h.pre, ...step.pre];
    step.actions = [...h.actions, { kind: 'spawn', name: instance }];
    step.capture = [{ variable: `${instance}.pid`, field: 'pid' }, ...step.capture];
    if (s.name === undefined) step.name = `start helper ${instance}`;
  } else if (s.stop !== undefined) {
    const inst = s.stop;
    step.actions = [{ kind: 'kill', pid: `\${${inst}.pid}`, signal: 'TERM', waitMs: 5000 }];
    if (s.name === undefined) step.name = `stop helper ${inst}`;
  } else {
    step.actions = [actionOf(s)];
  }
  return step;
}

const stepsOf = (v: RawStep[] | undefined, path: YamlPath, ctx: Ctx): Step[] => (v ?? []).map((s, i) => stepOf(s, [...path, i], ctx));

const varsOf = (v: Record<string, string | number> | undefined): Record<string, string> => Object.fromEntries(Object.entries(v ?? {}).map(([k, x]) => [k, String(x)]));
const reqOf = (v: string[] | undefined): string[] => (v ? [...v] : []);

function matrixOf(m: RawMatrix, path: YamlPath, ctx: Ctx): MatrixDef {
  const actors = Object.entries(m.actors).map(([name, a]) =>
    typeof a === 'string'
      ? { name, as: identityOf(a, ctx.identities), pre: [], vars: {} }
      : { name, as: identityOf(a.as, ctx.identities), pre: actionsOf(a.pre), vars: varsOf(a.vars) },
  );
  const actions = Object.entries(m.actions).map(([name, a]) => ({
    name,
    step: stepOf(a, [...path, 'actions', name], ctx),
    requires: reqOf(a.requires),
    vars: varsOf(a.vars),
  }));
  const targets = Object.entries(m.targets ?? {}).map(([name, t]) => ({
    name,
    vars: varsOf(t.vars),
    setup: stepsOf(t.setup, [...path, 'targets', name, 'setup'], ctx),
    cleanup: stepsOf(t.cleanup, [...path, 'targets', name, 'cleanup'], ctx),
    requires: reqOf(t.requires),
  }));
  const cells: MatrixDef['cells'] = [];
  for (const actor of actors)
    for (const action of actions)
      for (const target of targets.length ? targets.map((t) => t.name) : [undefined]) {
        const cell = resolveCell(m.expect, actor.name, action.name, target)!;
        // checkReferences made sure that every cell resolves to an outcome.
        const expect = expectationOf(cell.value as RawExpect);
        cells.push({ actor: actor.name, action: action.name, ...(target !== undefined ? { target } : {}), expect, where: ctx.doc.where([...path, 'expect', ...cell.path]) });
      }
  const def: MatrixDef = {
    title: m.title,
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
  if (m.name !== undefined) def.nameTemplate = m.name;
  if (m.description !== undefined) def.description = m.description;
  if (m.timeout !== undefined) def.timeoutMs = m.timeout * 1000;
  return def;
}

function caseOf(c: RawCase, p: YamlPath, ctx: Ctx): Extract<CaseDef, { kind: 'case' }>['def'] {
  const def: Extract<CaseDef, { kind: 'case' }>['def'] = {
    name: c.name,
    requires: reqOf(c.requires),
    vars: varsOf(c.vars),
    steps: stepsOf(c.steps, [...p, 'steps'], ctx),
    cleanup: stepsOf(c.cleanup, [...p, 'cleanup'], ctx),
    where: ctx.doc.where(p),
  };
  if (c.description !== undefined) def.description = c.description;
  if (c.timeout !== undefined) def.timeoutMs = c.timeout * 1000;
  if (c.alone) def.alone = true;
  return def;
}

/** The suite's files, host paths resolved against the suite file and checked to exist. */
function filesOf(raw: RawSuite, doc: Located): SuiteFile[] {
  const dests = new Map<string, number>();
  return (raw.files ?? []).map((f, i) => {
    const where = doc.where(['files', i]);
    const first = dests.get(f.dest);
    if (first !== undefined) throw badInput(`two files go to ${f.dest} (the first is files[${first}])`, { where: doc.where(['files', i, 'dest']), hint: 'give each file its own dest' });
    dests.set(f.dest, i);
    const destProblem = guestPathProblem(f.dest);
    if (destProblem) throw badInput(`dest ${JSON.stringify(f.dest)} is refused: ${destProblem}`, { where: doc.where(['files', i, 'dest']), hint: 'give the absolute path of a file in the guest, without . or .. components' });
    const base = { dest: f.dest, where };
    if (f.selftest !== undefined) return { ...base, from: { selftest: f.selftest }, mode: f.mode ?? 0o755 };
    const srcProblem = suiteFileProblem(dirname(doc.file), f.src!);
    if (srcProblem) throw badInput(`file ${f.src} is refused: ${srcProblem}`, { where: doc.where(['files', i, 'src']), hint: 'a suite copies into the guest only files beside it or in folders under it; move the file there' });
    const path = resolve(dirname(doc.file), f.src!);
    if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
      throw badInput(`file ${f.src} (${path}) does not exist or is not a regular file`, { where: doc.where(['files', i, 'src']), hint: 'src is relative to the suite file' });
    }
    return { ...base, from: { path }, mode: f.mode ?? 0o644 };
  });
}

function normalise(raw: RawSuite, doc: Located): Suite {
  const identities: Record<string, Identity> = {};
  for (const [k, v] of Object.entries(raw.identities ?? {})) identities[k] = { ...identityOf(v, {}), name: v.description ? v.description : k };
  const ctx: Ctx = { doc, vars: varsOf(raw.vars), identities, helpers: {}, timeoutS: raw.timeout ?? DEFAULT_CASE_TIMEOUT_S };
  for (const [k, h] of Object.entries(raw.helpers ?? {})) {
    ctx.helpers[k] = { name: k, as: identityOf(h.as, identities), pre: actionsOf(h.pre), actions: actionsOf(h.do), ...(h.description !== undefined ? { description: h.description } : {}) };
  }
  const cases = raw.cases.map((c, i): CaseDef => ('matrix' in c ? { kind: 'matrix', def: matrixOf(c.matrix, ['cases', i, 'matrix'], ctx) } : { kind: 'case', def: caseOf(c, ['cases', i], ctx) }));
  const suite: Suite = {
    name: raw.name,
    file: doc.file,
    requires: reqOf(raw.requires),
    timeoutMs: ctx.timeoutS * 1000,
    vars: ctx.vars,
    identities,
    helpers: ctx.helpers,
    files: filesOf(raw, doc),
    setup: stepsOf(raw.setup, ['setup'], ctx),
    cases,
    cleanup: stepsOf(raw.cleanup, ['cleanup'], ctx),
  };
  if (raw.description !== undefined) suite.description = raw.description.trim();
  if (raw.alone) suite.alone = true;
  if (raw.network === 'outbound') suite.network = { access: 'outbound', where: doc.where(['network']) };
  return suite;
}

// ---------------------------------------------------------------------------------------
// A trial's variables: a trial sets variables its suites declare, so one suite serves
// kernels whose interfaces are spelled differently.

function noExpectationFor(by: NonNullable<Step['expectBy']>, vars: Readonly<Record<string, string>>, step: Where | undefined, at: Where | undefined): Error {
  const where = step ? ` (the step at ${formatWhere(step)})` : '';
  return badInput(`no expectation for ${by.variable} = "${vars[by.variable] ?? ''}"${where}: its expect.when has ${Object.keys(by.when).map((k) => `"${k}"`).join(', ')}`, {
    ...(at ? { where: at } : {}),
    hint: `add an entry for this value to the step's expect.when, or "*" for any other value`,
  });
}

/** Every step of a suite, matrices' parts included. */
function stepsOfSuite(suite: Suite): Step[] {
  const out = [...suite.setup, ...suite.cleanup];
  for (const item of suite.cases) {
    if (item.kind === 'case') out.push(...item.def.steps, ...item.def.cleanup);
    else {
      const m = item.def;
      out.push(...m.setup, ...m.cleanup, ...m.actions.map((a) => a.step), ...m.targets.flatMap((t) => [...t.setup, ...t.cleanup]));
    }
  }
  return out;
}

/** Every requirement list of a suite, as written. */
function requirementsOfSuite(suite: Suite): string[] {
  const out = [...suite.requires];
  for (const item of suite.cases) {
    if (item.kind === 'case') out.push(...item.def.requires);
    else out.push(...item.def.requires, ...item.def.actions.flatMap((a) => a.requires), ...item.def.targets.flatMap((t) => t.requires));
  }
  return out;
}

/** Suite files loaded and validated, with a trial's variables in place of their defaults. */
export async function loadSuitesWithVars(files: readonly string[], vars: Readonly<Record<string, string>>, whereOf: (variable: string) => Where | undefined): Promise<Suite[]> {
  const loaded: Suite[] = [];
  for (const f of files) loaded.push(await loadSuite(f));
  return withTrialVars(loaded, vars, whereOf);
}

/**
 * The suites with a trial's variables in place of their defaults. Bad input, at the
 * trial's line: a variable none of the suites declares, a value that makes a requirement
 * malformed, a value a per-variable expectation has no entry for.
 */
export function withTrialVars(suites: readonly Suite[], vars: Readonly<Record<string, string>>, whereOf: (variable: string) => Where | undefined): Suite[] {
  for (const name of Object.keys(vars)) {
    if (suites.some((s) => name in s.vars)) continue;
    const declared = [...new Set(suites.flatMap((s) => Object.keys(s.vars)))];
    const where = whereOf(name);
    throw badInput(`${where ? 'the trial sets' : '--var sets'} variable "${name}", which none of the suites declares${declared.length ? ` (theirs: ${declared.join(', ')})` : ' (they declare none)'}`, {
      ...(where ? { where } : {}),
      hint: 'only variables the suites declare under vars can be set: check the name',
    });
  }
  return suites.map((suite) => {
    const set = Object.fromEntries(Object.entries(vars).filter(([k]) => k in suite.vars));
    if (!Object.keys(set).length) return suite;
    const out: Suite = { ...suite, vars: { ...suite.vars, ...set } };
    for (const r of requirementsOfSuite(suite)) {
      const refs = varRefs(r).filter((v) => v in set);
      if (!refs.length) continue;
      const value = substitute(r, out.vars);
      if (!REQUIREMENT_PATTERN.test(value))
        throw badInput(`variable ${refs[0]} = "${set[refs[0]!]}" makes the requirement "${r}" of ${suite.file} read "${value}", which is not ${REQUIREMENT_SYNTAX}`, { ...(whereOf(refs[0]!) ? { where: whereOf(refs[0]!)! } : {}) });
    }
    for (const step of stepsOfSuite(suite)) {
      if (step.expectBy && step.expectBy.variable in set && !expectationFor(step.expectBy, out.vars))
        throw noExpectationFor(step.expectBy, out.vars, step.where, whereOf(step.expectBy.variable));
    }
    return out;
  });
}
