// The scenario file format, defined once: the loader validates with it (every problem with
// its file:line:column) and configs/schema/scenario.schema.json is generated from it.
// Structural rules live in the schema; rules that need the whole file (references to
// identities, helpers, variables and matrix names) are checked by checkReferences below.
import { REQUIREMENT_PATTERN, REQUIREMENT_SYNTAX } from '../config/kconfig.js';
import { bool, dict, int, list, obj, oneOf, str, type Infer, type Issue, type Schema } from '../common/schema.js';
import type { YamlPath } from '../common/yaml.js';
import { ACTION_KEYS, ACTION_SCHEMAS, actionItem, actionList } from './actions.js';
import { DEFS, exactlyOne, isMap, named, refine, scalar, suggest } from './combinators.js';
import { CAP_NAMES, ERRNO_NAMES } from './names.js';
import { NETWORK_ACCESS } from '../common/network.js';

/** A name reports print on one line (TAP, JUnit, the summary): no control characters. */
const oneLine = (description: string) => str({ pattern: /^[^\x00-\x1f\x7f]+$/, description: `${description}; one line, no control characters` });
import { VAR_NAME_RE, VAR_REF_RE, varRefs } from './vars.js';

const regex = (description: string): Schema<string> =>
  refine(str({ description }), (v, path, out) => {
    try {
      new RegExp(v);
    } catch (err) {
      out.push({ path, message: `not a valid regular expression: ${(err as Error).message}` });
    }
  });

const errnoName = refine(str({ pattern: /^E[A-Z0-9]+$/, description: 'an errno name such as EPERM' }), (v, path, out) => {
  if (!ERRNO_NAMES.includes(v)) out.push({ path, message: `"${v}" is not a Linux errno name${suggest(v, ERRNO_NAMES)}` });
});

const capName = refine(str({ pattern: /^CAP_[A-Z_]+$/, description: 'a capability name such as CAP_SYS_ADMIN' }), (v, path, out) => {
  if (!CAP_NAMES.includes(v)) out.push({ path, message: `"${v}" is not a capability name${suggest(v, CAP_NAMES)}` });
});

// ---------------------------------------------------------------------------------------
// Identities, expectations, captures

const identityObj = named('identity', obj(
  {
    uid: { schema: int({ min: 0 }), required: true },
    gid: int({ min: 0, description: 'defaults to the uid' }),
    groups: list(int({ min: 0 }), { description: 'supplementary groups; default none' }),
    caps: oneOf([str({ enum: ['all', 'none'] }), list(capName), obj({ drop: { schema: list(capName, { minItems: 1 }), required: true } })], 'all, none, a list of capabilities to keep, or {drop: [...]}'),
    description: str(),
  },
  { description: 'who a step runs as' },
));
const identityRef = oneOf([str({ description: 'the name of an identity (built in: root, nobody)' }), identityObj]);
export const BUILTIN_IDENTITIES = ['root', 'nobody'];

const EXPECT_KEYS = ['errno', 'exit', 'output', 'match', 'values', 'error'];
const EXPECT_WORDS = ['ok', 'error', 'any'];
const valueCheck = oneOf([str(), int(), bool(), obj({ match: { schema: regex('a regular expression'), required: true } })]);
const expectStr = refine(str({ description: 'ok, error (any errno), any (whatever happens), or an errno name such as EPERM' }), (v, path, out) => {
  const s = v;
  if (EXPECT_WORDS.includes(s) || ERRNO_NAMES.includes(s)) return;
  out.push({ path, message: `"${s}" is not ok, error, any or an errno name${suggest(s, ERRNO_NAMES)}` });
});
const expectObj = refine(
  obj({
    errno: errnoName,
    error: bool('true: fails with any errno'),
    exit: int({ min: 0, max: 255, description: 'exit status of a sh step' }),
    output: scalar('the result\'s output (sh: stdout), one trailing newline removed'),
    match: regex('a regular expression the output must match'),
    values: dict(valueCheck, { description: 'result fields by dotted path (child.pid, exists, ...)' }),
  }),
  (e, path, out) => {
    const fails = e.errno !== undefined || e.error === true;
    if (fails && (e.output !== undefined || e.match !== undefined || e.values !== undefined))
      out.push({ path, message: 'a failing action has no output: expect either an errno or output/match/values' });
    if (e.errno !== undefined && e.exit !== undefined) out.push({ path: [...path, 'exit'], atKey: true, message: 'expect either an errno (agent actions) or an exit status (sh), not both' });
  },
);
export const expectSchema = named('expectation', oneOf([expectStr, expectObj], 'ok, error, any, an errno name, or a mapping'));
/** A step's expectation per value of a suite variable, where kernels are meant to differ. */
const expectByVar = named('expectationByVariable', obj(
  {
    by: { schema: str({ pattern: VAR_NAME_RE, description: 'a variable of the suite (its vars), which a trial may set' }), required: true },
    when: { schema: dict(expectSchema, { description: 'the variable\'s value -> the expectation; "*" for any other value' }), required: true },
  },
  { description: 'the expectation chosen by the value of a suite variable' },
));
const stepExpect = oneOf([expectSchema, expectByVar], 'an expectation, or {by: VARIABLE, when: {VALUE: expectation}}');
export type RawExpectByVar = Infer<typeof expectByVar>;
/** Whether a step's expect is the per-variable form. */
export const isExpectByVar = (v: unknown): v is RawExpectByVar => isMap(v) && 'by' in v && 'when' in v;

const capture = named('capture', oneOf([
  str({ description: 'a dotted path into the result: output, pid, child.pid, ... (sh: stdout, output, exit)' }),
  obj({ field: { schema: str(), required: true }, match: regex('its first group (or whole match) is captured') }),
]));

/** A requirement, or a suite variable holding one (a trial may set it for its kernel). */
const requirement = oneOf([
  str({ pattern: REQUIREMENT_PATTERN, description: REQUIREMENT_SYNTAX }),
  str({ pattern: VAR_REF_RE, description: 'a variable of the suite holding a requirement, e.g. "${ns_option}"' }),
], `${REQUIREMENT_SYNTAX}, or a suite variable holding one`);
const requiresList = named('requires', list(requirement, {
  description: 'kernel config options the kernel must have; otherwise "not run"',
}));
const varsDict = named('vars', dict(scalar(), { keyPattern: VAR_NAME_RE, description: 'variables, used as ${name}' }));
const timeout = int({ min: 1, max: 86_400, description: 'seconds' });

// ---------------------------------------------------------------------------------------
// Steps

const KIND_KEYS = ['do', 'sh', 'tap', 'spawn', 'stop', ...ACTION_KEYS];

const stepFields = {
  name: oneLine('what the step checks, for reports'),
  as: identityRef,
  pre: actionList('actions run as root with all capabilities before the identity is taken on, e.g. join a container'),
  do: oneOf([actionItem, list(actionItem, { minItems: 1 })], 'actions run in one agent process; the expectation is about the last'),
  sh: str({ description: 'a shell command; judged by exit status and stdout' }),
  tap: str({ description: 'a shell command printing TAP or KTAP: each test point becomes a case named CASE/POINT; the step passes when the stream is complete' }),
  spawn: oneOf([str({ description: 'a helper name' }), obj({ helper: { schema: str(), required: true }, name: str({ pattern: VAR_NAME_RE, description: 'instance name (default: the helper name)' }) })], 'start a helper task; its pid becomes ${NAME.pid}'),
  stop: str({ description: 'a helper instance started earlier: send TERM and wait for it to exit' }),
  expect: stepExpect,
  capture: dict(capture, { keyPattern: VAR_NAME_RE, description: 'variables set from the result for later steps' }),
  timeout,
  load: obj(
    {
      workers: int({ min: 1, max: 64, description: 'this many workers run the actions, started at once' }),
      each: scalar('one worker per comma-separated value, {each} replaced by it in the arguments'),
      repeat: int({ min: 1, max: 1_000_000, description: 'each worker runs the actions this many times ({iter}: the round, from 0)' }),
      timer: int({ min: 100, max: 10_000_000, description: 'SIGALRM every this many microseconds while the workers run' }),
      thread: bool('run the actions once, in a thread other than the leader ({tid}: its id)'),
    },
    { description: 'how the agent runs the actions; with workers, each, repeat or timer the result is one line per action with the counts of all runs (output "ok=N EEXIST=M ...")' },
  ),
  ...ACTION_SCHEMAS,
};

function stepRules(s: Infer<typeof stepObj>, path: YamlPath, out: Issue[]): void {
  const kind = exactlyOne(s, path, out, KIND_KEYS, 'a step');
  const ex = s.expect;
  if (kind === 'tap' && ex !== undefined) {
    out.push({ path: [...path, 'expect'], atKey: true, message: 'a tap step has no expect: each of its test points is judged by its own ok / not ok and directive' });
  }
  const each: [RawExpect | undefined, YamlPath][] = kind === 'tap' ? [] : isExpectByVar(ex)
    ? Object.entries(ex.when).map(([value, e]) => [e, [...path, 'expect', 'when', value]])
    : [[ex, [...path, 'expect']]];
  for (const [e, p] of each) {
    if (kind === 'sh') {
      const fails = e === 'error' || (typeof e === 'string' && e.startsWith('E')) || (isMap(e) && (e.errno !== undefined || e.error !== undefined || e.values !== undefined));
      if (fails) out.push({ path: p, message: 'a sh step is judged by its exit status and stdout: use exit/output/match, not errno or values' });
    } else if (kind && isMap(e) && e.exit !== undefined) {
      out.push({ path: [...p, 'exit'], atKey: true, message: 'exit applies to sh steps; agent actions are judged by errno' });
    }
  }
  if (s.load !== undefined && (kind === 'sh' || kind === 'spawn' || kind === 'stop')) out.push({ path: [...path, 'load'], atKey: true, message: 'load applies to agent actions (do or an action key), not to sh, spawn or stop' });
  if (s.load?.thread && (s.load.workers !== undefined || s.load.each !== undefined || s.load.repeat !== undefined || s.load.timer !== undefined)) out.push({ path: [...path, 'load', 'thread'], atKey: true, message: 'thread runs the actions once in one thread: not with workers, each, repeat or timer' });
}

const stepObj = obj(stepFields, { description: 'one step: exactly one of do, sh, tap, spawn, stop or an action key' });
export const stepSchema = named('step', refine(stepObj, stepRules));
const steps = (description: string) => list(stepSchema, { description });

const helperSchema = obj({
  description: str(),
  as: identityRef,
  pre: actionList('done as root before the identity is taken on (e.g. join a container)'),
  do: oneOf([actionItem, list(actionItem)], 'done before the helper forks off, e.g. unshare then sethostname'),
});

// ---------------------------------------------------------------------------------------
// Cases and matrices

const caseSchema = obj({
  name: { schema: oneLine('the case name, as reports show it'), required: true },
  description: str(),
  requires: requiresList,
  timeout,
  alone: bool('true: no other case runs in another guest meanwhile (with --jobs)'),
  vars: varsDict,
  steps: { schema: steps('run in order; the first one not as expected ends the case'), required: true },
  cleanup: steps('always run after the steps'),
});

const MATRIX_SUPPLIED: readonly ('as' | 'expect')[] = ['as', 'expect'];
const matrixAction = named('matrixAction', refine(
  obj({ ...stepFields, requires: requiresList, vars: varsDict }, { description: 'a step without as/expect: the matrix supplies both' }),
  (s, path, out) => {
    for (const k of MATRIX_SUPPLIED) if (s[k] !== undefined) out.push({ path: [...path, k], atKey: true, message: `"${k}" is set by the matrix (actors and expect), not by an action` });
    stepRules(s, path, out);
  },
));

export type RawExpect = Infer<typeof expectSchema>;
/** actor -> (outcome | action -> (outcome | target -> outcome)), as matrixExpect checks it. */
export interface OutcomeTree {
  [name: string]: RawExpect | OutcomeTree;
}

/** Within a checked matrix expect, a node that is an outcome passed expectSchema. */
const isOutcome = (v: unknown): v is RawExpect => typeof v === 'string' || (isMap(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => EXPECT_KEYS.includes(k)));

/** actor -> (outcome | action -> (outcome | target -> outcome)); "*" matches any name. */
const matrixExpect: Schema<OutcomeTree> = {
  describe: 'a mapping of actor to outcome, or to a mapping of action (then target) to outcome',
  check(v, path, out) {
    const walk = (x: unknown, p: YamlPath, depth: number) => {
      if (isOutcome(x)) return expectSchema.check(x, p, out);
      if (!isMap(x) || depth === 3) return void out.push({ path: p, message: 'expected an outcome (ok, an errno name, or an expectation mapping)' });
      for (const [k, y] of Object.entries(x)) walk(y, [...p, k], depth + 1);
    };
    if (!isMap(v)) return void out.push({ path, message: `expected ${this.describe}` });
    for (const [k, y] of Object.entries(v)) walk(y, [...path, k], 1);
  },
  json: () => ({ type: 'object', description: 'actor -> outcome | {action -> outcome | {target -> outcome}}; "*" matches any name' }),
};

const nameKey = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
const matrixSchema = obj({
  matrix: {
    required: true,
    schema: obj({
      title: { schema: str({ description: 'case names start with it' }), required: true },
      name: str({ description: 'case name template after the title; default "${actor} ${action} ${target}"' }),
      description: str(),
      requires: requiresList,
      timeout,
      vars: varsDict,
      actors: { schema: dict(oneOf([str({ description: 'an identity name' }), obj({ as: { schema: identityRef, required: true }, pre: actionList('pre-steps for every cell of this actor'), vars: varsDict })]), { keyPattern: nameKey }), required: true },
      actions: { schema: dict(matrixAction, { keyPattern: nameKey }), required: true },
      targets: dict(obj({ description: str(), vars: varsDict, setup: steps('run before the cell'), cleanup: steps('run after the cell'), requires: requiresList }), { keyPattern: nameKey }),
      setup: steps('run before every cell'),
      cleanup: steps('run after every cell'),
      expect: { schema: matrixExpect, required: true },
    }),
  },
});

const caseItem: Schema<Infer<typeof caseSchema> | Infer<typeof matrixSchema>> = {
  describe: 'a case or a matrix',
  check(v, path, out) {
    (isMap(v) && 'matrix' in v ? matrixSchema : caseSchema).check(v, path, out);
  },
  json: () => ({ anyOf: [caseSchema.json(), matrixSchema.json()] }),
};

export const suiteSchema = obj(
  {
    name: { schema: str({ pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/ }), required: true },
    description: str(),
    requires: requiresList,
    timeout: int({ min: 1, max: 86_400, description: 'default per-case timeout in seconds (60)' }),
    alone: bool('true: the suite runs in one guest, whatever --jobs says'),
    network: str({ enum: NETWORK_ACCESS, description: "outbound: the suite's cases need the guest to reach beyond itself (QEMU's user network routes its traffic); unset, the guest's network is confined" }),
    vars: varsDict,
    identities: dict(identityObj, { keyPattern: nameKey }),
    helpers: dict(helperSchema, { keyPattern: nameKey }),
    files: list(
      refine(
        obj({
          src: str({ description: 'a host file, relative to the suite file' }),
          selftest: str({ pattern: /^[A-Za-z0-9._-]+$/, description: 'a program images/recipes/selftests.yaml builds' }),
          dest: { schema: str({ pattern: /^\/[^\0]*[^/]$/, description: 'absolute path in the guest' }), required: true },
          mode: int({ min: 0, max: 0o7777, description: 'file mode (default 0o644 for src, 0o755 for selftest)' }),
        }),
        (f, path, out) => {
          if ((f.src === undefined) === (f.selftest === undefined)) out.push({ path, message: 'a file needs exactly one of src (a host file) and selftest (a program images/recipes/selftests.yaml builds)' });
        },
      ),
      { description: 'files put into the guest once per guest, before setup' },
    ),
    setup: steps('run once before the cases; a failure means no case runs'),
    cases: { schema: list(caseItem, { minItems: 1 }), required: true },
    cleanup: steps('run once after the cases'),
  },
  { description: 'a ktrial scenario suite' },
);

/** A suite file as the schema accepts it, and its parts, for the loader. */
export type RawSuite = Infer<typeof suiteSchema>;
export type RawStep = Infer<typeof stepSchema>;
export type RawMatrixStep = Infer<typeof matrixAction>;
export type RawIdentity = Infer<typeof identityRef>;
export type RawCase = Infer<typeof caseSchema>;
export type RawMatrix = Infer<typeof matrixSchema>['matrix'];
type RawHelper = Infer<typeof helperSchema>;

export function scenarioJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://ktrial.invalid/schema/scenario.schema.json',
    title: 'ktrial scenario suite',
    ...suiteSchema.json(),
    $defs: Object.fromEntries([...DEFS].sort(([a], [b]) => a.localeCompare(b)).map(([k, s]) => [k, s.json()])),
  };
}

export function scenarioJsonSchemaText(): string {
  return `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------
// Whole-file rules: names that must be defined before use.

export const BUILTIN_VARS = ['suite', 'case', 'case_index', 'agent'];
const CASE_VARS = ['case', 'case_index'];
export const MATRIX_VARS = ['actor', 'action', 'target'];

/** What the reference checks of one suite share: its definitions and the issues found. */
interface RefContext {
  identities: Record<string, unknown>;
  helpers: Record<string, RawHelper>;
  /** Report an issue once, however many matrix cells find it. */
  push(issue: Issue): void;
  /** Variables every scope starts with: built-ins, the suite's vars and, once its setup is
   * walked, the setup's captures and helper pids. */
  suiteScope: Set<string>;
  /** Helper instances the suite's setup started. */
  suiteInstances: Set<string>;
  /** The suite's own variables (its vars): the ones a trial may set, so the only ones
   * requirements and per-variable expectations may use. */
  suiteVars: Set<string>;
}

/** Run after the schema passed: raw is structurally valid. */
export function checkReferences(raw: RawSuite, out: Issue[]): void {
  const seen = new Set<string>();
  const ctx: RefContext = {
    identities: raw.identities ?? {},
    helpers: raw.helpers ?? {},
    push(i) {
      const key = `${JSON.stringify(i.path)}\u0000${i.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(i);
      }
    },
    suiteScope: new Set<string>([...BUILTIN_VARS.filter((v) => !CASE_VARS.includes(v)), ...Object.keys(raw.vars ?? {})]),
    suiteInstances: new Set<string>(),
    suiteVars: new Set(Object.keys(raw.vars ?? {})),
  };

  for (const k of Object.keys(ctx.identities))
    if (BUILTIN_IDENTITIES.includes(k)) ctx.push({ path: ['identities', k], atKey: true, message: `"${k}" is a built-in identity; choose another name` });

  checkVars(ctx, raw.vars, ['vars'], new Set(BUILTIN_VARS.filter((v) => !CASE_VARS.includes(v))));
  checkRequires(ctx, raw.requires, ['requires']);
  checkSteps(ctx, raw.setup, ['setup'], ctx.suiteScope, ctx.suiteInstances);

  raw.cases.forEach((c, ci) => {
    if ('matrix' in c) checkMatrix(ctx, c.matrix, ['cases', ci, 'matrix']);
    else checkCase(ctx, c, ['cases', ci]);
  });

  checkSteps(ctx, raw.cleanup, ['cleanup'], new Set(ctx.suiteScope), new Set(ctx.suiteInstances));
}

function checkIdentity(ctx: RefContext, v: RawIdentity | undefined, p: YamlPath): void {
  if (typeof v === 'string' && !(v in ctx.identities) && !BUILTIN_IDENTITIES.includes(v))
    ctx.push({ path: p, message: `unknown identity "${v}" (defined: ${[...BUILTIN_IDENTITIES, ...Object.keys(ctx.identities)].join(', ')})` });
}

/** Every ${variable} in the strings of value must be in scope. */
function checkStrings(ctx: RefContext, value: unknown, p: YamlPath, scope: ReadonlySet<string>, skipKeys: readonly string[] = []): void {
  if (typeof value === 'string') {
    for (const name of varRefs(value)) if (!scope.has(name)) ctx.push({ path: p, message: `undefined variable \${${name}}${knownVarsHint(name, scope)}` });
  } else if (Array.isArray(value)) value.forEach((x, i) => checkStrings(ctx, x, [...p, i], scope));
  else if (isMap(value)) for (const [k, x] of Object.entries(value)) if (!skipKeys.includes(k)) checkStrings(ctx, x, [...p, k], scope);
}

function knownVarsHint(name: string, scope: ReadonlySet<string>): string {
  const known = [...scope];
  const s = suggest(name, known);
  return s || (known.length ? ` (known here: ${known.sort().join(', ')})` : '');
}

/** Variable values may use built-ins and earlier variables; each one joins the scope. */
function checkVars(ctx: RefContext, vars: Record<string, unknown> | undefined, p: YamlPath, scope: Set<string>): void {
  for (const [k, v] of Object.entries(vars ?? {})) {
    checkStrings(ctx, v, [...p, k], scope);
    scope.add(k);
  }
}

/** Walk steps in order; scope grows with captures and helper instances. */
function checkSteps(ctx: RefContext, steps: RawStep[] | undefined, base: YamlPath, scope: Set<string>, instances: Set<string>): void {
  steps?.forEach((s, i) => checkStep(ctx, s, [...base, i], scope, instances));
}

/** A variable a requirement or a per-variable expectation names must be one of the suite's vars. */
function checkSuiteVar(ctx: RefContext, name: string, p: YamlPath, use: string): void {
  if (!ctx.suiteVars.has(name))
    ctx.push({ path: p, message: `${use} "${name}" is not a variable of the suite${ctx.suiteVars.size ? ` (its vars: ${[...ctx.suiteVars].join(', ')})` : ' (it has no vars)'}; declare it under the suite's vars with its default value` });
}

function checkRequires(ctx: RefContext, requires: readonly string[] | undefined, p: YamlPath): void {
  requires?.forEach((r, i) => {
    for (const name of varRefs(r)) checkSuiteVar(ctx, name, [...p, i], 'the requirement\'s variable');
  });
}

function checkStep(ctx: RefContext, s: RawStep | RawMatrixStep, p: YamlPath, scope: Set<string>, instances: Set<string>): void {
  checkIdentity(ctx, s.as, [...p, 'as']);
  if (isExpectByVar(s.expect)) checkSuiteVar(ctx, s.expect.by, [...p, 'expect', 'by'], 'the expectation\'s variable');
  if ('requires' in s) checkRequires(ctx, s.requires, [...p, 'requires']);
  checkStrings(ctx, s, p, scope, ['capture', 'spawn', 'stop', 'requires', 'vars']);
  if (s.spawn !== undefined) checkSpawn(ctx, s.spawn, [...p, 'spawn'], scope, instances);
  if (s.stop !== undefined && !instances.has(s.stop))
    ctx.push({ path: [...p, 'stop'], message: `no helper instance "${s.stop}" was started before this step${instances.size ? ` (started: ${[...instances].join(', ')})` : ''}` });
  for (const v of Object.keys(s.capture ?? {})) scope.add(v);
}

/** The helper must be defined; its instance's pid becomes a variable. */
function checkSpawn(ctx: RefContext, sp: NonNullable<RawStep['spawn']>, p: YamlPath, scope: Set<string>, instances: Set<string>): void {
  const helper = typeof sp === 'string' ? sp : sp.helper;
  const inst = typeof sp === 'string' ? sp : (sp.name ?? helper);
  const def = ctx.helpers[helper];
  const names = Object.keys(ctx.helpers);
  if (!def) ctx.push({ path: typeof sp === 'string' ? p : [...p, 'helper'], message: `unknown helper "${helper}"${names.length ? ` (defined: ${names.join(', ')})` : ' (no helpers are defined)'}` });
  else {
    checkIdentity(ctx, def.as, ['helpers', helper, 'as']);
    checkStrings(ctx, { pre: def.pre, do: def.do }, ['helpers', helper], scope);
  }
  instances.add(inst);
  scope.add(`${inst}.pid`);
}

function checkCase(ctx: RefContext, c: RawCase, cp: YamlPath): void {
  checkRequires(ctx, c.requires, [...cp, 'requires']);
  const scope = new Set([...ctx.suiteScope, ...CASE_VARS]);
  checkVars(ctx, c.vars, [...cp, 'vars'], scope);
  const inst = new Set(ctx.suiteInstances);
  checkSteps(ctx, c.steps, [...cp, 'steps'], scope, inst);
  checkSteps(ctx, c.cleanup, [...cp, 'cleanup'], scope, inst);
}

function checkMatrix(ctx: RefContext, m: RawMatrix, mp: YamlPath): void {
  const targets = m.targets ?? {};
  const groups: [string, object][] = [['actors', m.actors], ['actions', m.actions], ['targets', targets]];
  for (const [group, names] of groups)
    for (const n of Object.keys(names))
      if (EXPECT_KEYS.includes(n) || n === '*') ctx.push({ path: [...mp, group, n], atKey: true, message: `"${n}" cannot be used as a name here (it is an expectation keyword)` });
  for (const [n, a] of Object.entries(m.actors)) {
    if (typeof a === 'string') checkIdentity(ctx, a, [...mp, 'actors', n]);
    else checkIdentity(ctx, a.as, [...mp, 'actors', n, 'as']);
  }
  checkExpectNames(ctx, m, mp);
  checkRequires(ctx, m.requires, [...mp, 'requires']);
  for (const [n, t] of Object.entries(targets)) checkRequires(ctx, t.requires, [...mp, 'targets', n, 'requires']);
  const targetNames = Object.keys(targets);
  for (const actor of Object.keys(m.actors))
    for (const action of Object.keys(m.actions))
      for (const target of targetNames.length ? targetNames : [undefined]) checkCell(ctx, m, mp, actor, action, target);
}

/** Names used in expect must exist. */
function checkExpectNames(ctx: RefContext, m: RawMatrix, mp: YamlPath): void {
  const targetNames = Object.keys(m.targets ?? {});
  const checkNames = (x: RawExpect | OutcomeTree, p: YamlPath, level: number) => {
    if (isOutcome(x) || !isMap(x)) return;
    const known = level === 1 ? Object.keys(m.actions) : targetNames;
    const what = level === 1 ? 'action' : 'target';
    for (const [k, y] of Object.entries(x)) {
      if (k !== '*' && !known.includes(k)) ctx.push({ path: [...p, k], atKey: true, message: `unknown ${what} "${k}" (defined: ${known.length ? known.join(', ') : 'none'})` });
      checkNames(y, [...p, k], level + 1);
    }
  };
  for (const [k, y] of Object.entries(m.expect)) {
    if (k !== '*' && !(k in m.actors)) ctx.push({ path: [...mp, 'expect', k], atKey: true, message: `unknown actor "${k}" (defined: ${Object.keys(m.actors).join(', ')})` });
    checkNames(y, [...mp, 'expect', k], 1);
  }
}

/** One cell must get an outcome, and its steps' variables must be defined. */
function checkCell(ctx: RefContext, m: RawMatrix, mp: YamlPath, actor: string, action: string, target: string | undefined): void {
  const cell = resolveCell(m.expect, actor, action, target);
  if (!cell) ctx.push({ path: [...mp, 'expect'], atKey: true, message: `no expected outcome for actor "${actor}", action "${action}"${target ? `, target "${target}"` : ''}` });
  else if (target === undefined && !isOutcome(cell.value)) ctx.push({ path: cell.path.length ? [...mp, 'expect', ...cell.path] : [...mp, 'expect'], message: 'this matrix has no targets: give an outcome here, not a mapping' });
  const a = m.actors[actor]!;
  const t = target === undefined ? undefined : m.targets?.[target];
  const scope = new Set([...ctx.suiteScope, ...CASE_VARS, ...MATRIX_VARS]);
  checkVars(ctx, m.vars, [...mp, 'vars'], scope);
  checkVars(ctx, typeof a === 'string' ? {} : a.vars, [...mp, 'actors', actor, 'vars'], scope);
  checkVars(ctx, m.actions[action]!.vars, [...mp, 'actions', action, 'vars'], scope);
  if (t) checkVars(ctx, t.vars, [...mp, 'targets', target!, 'vars'], scope);
  const inst = new Set(ctx.suiteInstances);
  if (m.name !== undefined) checkStrings(ctx, m.name, [...mp, 'name'], scope);
  checkSteps(ctx, m.setup, [...mp, 'setup'], scope, inst);
  if (t) checkSteps(ctx, t.setup, [...mp, 'targets', target!, 'setup'], scope, inst);
  if (typeof a !== 'string') checkStrings(ctx, a.pre, [...mp, 'actors', actor, 'pre'], scope);
  checkStep(ctx, m.actions[action]!, [...mp, 'actions', action], scope, inst);
  if (t) checkSteps(ctx, t.cleanup, [...mp, 'targets', target!, 'cleanup'], scope, inst);
  checkSteps(ctx, m.cleanup, [...mp, 'cleanup'], scope, inst);
}

/** The outcome that applies to one matrix cell. At each level an exact name is tried
 * before "*"; an outcome higher up applies to everything below it. */
export function resolveCell(exp: OutcomeTree, actor: string, action: string, target: string | undefined): { value: RawExpect | OutcomeTree; path: YamlPath } | undefined {
  const names = [actor, action, target];
  const search = (cur: RawExpect | OutcomeTree, level: number, path: YamlPath): { value: RawExpect | OutcomeTree; path: YamlPath } | undefined => {
    if (isOutcome(cur)) return { value: cur, path };
    if (!isMap(cur)) return undefined;
    const name = names[level];
    if (level >= names.length || name === undefined) return { value: cur, path };
    for (const key of [name, '*']) {
      const next = cur[key];
      if (next === undefined) continue;
      const hit = search(next, level + 1, [...path, key]);
      if (hit) return hit;
    }
    return undefined;
  };
  return search(exp, 0, []);
}
