// The actions a step can ask of the guest agent, one entry each, as images/agent/agent.c
// has them on its side: how the suite file writes the action (its schema), what the loader
// reads from it, the agent's arguments after the action's name and the report's label.
// Adding an action means one entry here and one in the agent.
import { bool, int, list, obj, oneOf, str, type Fields, type Schema } from '../common/schema.js';
import { exactlyOne, named, refine, scalar, suggest } from './combinators.js';
import { MOUNT_FLAGS, NS_FLAGS, SIGNAL_NAMES } from './names.js';

/** What every action has: the agent's arguments and the report's label, each after the
 * action's name (none and the bare name when absent). A is the action's own fields. */
interface AgentAction<A> {
  argv?(a: A): string[];
  describe?(a: A): string;
}

/** An action a suite names: its value in the file is an R, read into the fields A. */
interface SuiteAction<R, A> extends AgentAction<A> {
  schema: Schema<R>;
  parse(raw: R): A;
}

/** Infers R and A of one entry from its schema and parse. */
const action = <R, A>(def: SuiteAction<R, A>) => def;

const noArgs: Schema<null | true | Record<string, never>> = {
  describe: 'nothing (leave the value empty)',
  check(v, path, out) {
    if (v === null || v === true || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) return;
    out.push({ path, message: 'this action takes no value: leave it empty (e.g. "- gethostname:")' });
  },
  json: () => ({ anyOf: [{ type: 'null' }, { const: true }, { type: 'object', maxProperties: 0 }], description: 'takes no value' }),
};

const nsFlags = named('nsFlags', refine(
  oneOf([str({ description: 'namespace flags joined by commas, e.g. "uts,ipc"' }), list(str({ enum: NS_FLAGS }), { minItems: 1 })], `namespace flags: ${NS_FLAGS.join(', ')}`),
  (v, path, out) => {
    if (typeof v !== 'string') return;
    for (const w of v.split(',')) {
      if (w !== 'none' && !NS_FLAGS.includes(w)) out.push({ path, message: `"${w}" is not a namespace flag${suggest(w, NS_FLAGS)} (flags: ${NS_FLAGS.join(', ')}, joined by commas)` });
    }
  },
));

const signal = oneOf([str({ pattern: new RegExp(`^(SIG)?(${SIGNAL_NAMES.join('|')})$`) }), int({ min: 0, max: 64 })], 'a signal name (TERM, KILL, ...) or number');

const path = str({ description: 'a path in the guest' });
const pathOr = <F extends Fields>(fields: F) => oneOf([path, obj(fields)]);

function flagsOf(v: string | string[]): string[] {
  const list = Array.isArray(v) ? v : v.split(',');
  return list.map((f) => f.trim()).filter((f) => f && f !== 'none');
}
const flagsArg = (flags: string[]) => flags.join(',') || 'none';

/** read, readlink, exists, rmdir: a path and nothing else. */
const pathOnly = action({ schema: path, parse: (p) => ({ path: p }), argv: (a) => [a.path], describe: (a) => a.path });

/** Every action a suite names except try, which holds one of them. */
const BASIC_ACTIONS = {
  unshare: action({ schema: nsFlags, parse: (v) => ({ flags: flagsOf(v) }), argv: (a) => [flagsArg(a.flags)], describe: (a) => flagsArg(a.flags) }),
  clone: action({
    schema: oneOf([
      nsFlags,
      obj({
        flags: { schema: nsFlags, required: true },
        read: oneOf([path, list(path)], 'files the child reads and reports'),
        hostname: bool('the child reports its hostname'),
        hold: bool('the child stays alive (a helper) instead of exiting'),
        name: str({ description: 'helper name when held' }),
        tls: str({ pattern: /^(0x[0-9a-fA-F]+|[0-9]+)$/, description: 'CLONE_SETTLS with this address (decimal or 0x hex); one above the user address space makes the fork fail late (EPERM on x86_64)' }),
      }),
    ]),
    parse: (v) =>
      typeof v === 'string' || Array.isArray(v)
        ? { flags: flagsOf(v), read: [], hostname: false, hold: false }
        : {
            flags: flagsOf(v.flags),
            read: v.read === undefined ? [] : Array.isArray(v.read) ? [...v.read] : [v.read],
            hostname: v.hostname === true,
            hold: v.hold === true,
            ...(v.name !== undefined ? { name: v.name } : {}),
            ...(v.tls !== undefined ? { tls: v.tls } : {}),
          },
    argv(a) {
      const argv = [flagsArg(a.flags)];
      for (const r of a.read) argv.push('--read', r);
      if (a.hostname) argv.push('--hostname');
      if (a.hold) argv.push('--hold');
      if (a.name) argv.push('--name', a.name);
      if (a.tls !== undefined) argv.push('--tls', a.tls);
      return argv;
    },
    describe(a) {
      const extra = [...a.read.map((r) => `read ${r}`), ...(a.hostname ? ['hostname'] : []), ...(a.hold ? ['hold'] : []), ...(a.tls !== undefined ? [`tls ${a.tls}`] : [])];
      return `${flagsArg(a.flags)}${extra.length ? ` (${extra.join(', ')})` : ''}`;
    },
  }),
  write: action({
    schema: obj({
      path: { schema: path, required: true },
      data: { schema: scalar('what to write; "self" writes the agent\'s own pid'), required: true },
      create: bool('create the file if missing'),
      append: bool('append instead of truncating'),
    }),
    parse: (v) => ({ path: v.path, data: String(v.data), ...(v.create ? { create: true } : {}), ...(v.append ? { append: true } : {}) }),
    argv: (a) => [a.path, a.data, ...(a.create ? ['--create'] : []), ...(a.append ? ['--append'] : [])],
    describe: (a) => `${JSON.stringify(a.data)} to ${a.path}`,
  }),
  join: action({
    schema: str({ description: 'a container/cgroup directory: write the agent\'s pid to DIR/tasks' }),
    parse: (dir) => ({ dir }),
    argv: (a) => [a.dir],
    describe: (a) => a.dir,
  }),
  read: pathOnly,
  readlink: pathOnly,
  exists: pathOnly,
  mkdir: action({
    schema: pathOr({ path: { schema: path, required: true }, mode: str({ pattern: /^0?[0-7]{3,4}$/, description: 'octal mode' }) }),
    parse: (v) => (typeof v === 'string' ? { path: v } : { path: v.path, ...(v.mode !== undefined ? { mode: v.mode } : {}) }),
    argv: (a) => [a.path, ...(a.mode ? [a.mode] : [])],
    describe: (a) => a.path,
  }),
  rmdir: pathOnly,
  chmod: action({
    schema: obj({ path: { schema: path, required: true }, mode: { schema: str({ pattern: /^0?[0-7]{3,4}$/, description: 'octal mode, e.g. "0666"' }), required: true } }),
    parse: (v) => ({ path: v.path, mode: v.mode }),
    argv: (a) => [a.path, a.mode],
    describe: (a) => `${a.mode} ${a.path}`,
  }),
  mount: action({
    schema: obj({
      type: { schema: str(), required: true },
      source: str({ description: 'defaults to the type' }),
      target: { schema: path, required: true },
      options: str({ description: 'the file system\'s data string, e.g. "ns" or "size=1m"' }),
      flags: list(str({ enum: MOUNT_FLAGS })),
    }),
    parse: (v) => ({ type: v.type, source: v.source ?? v.type, target: v.target, ...(v.options !== undefined ? { options: v.options } : {}), ...(v.flags !== undefined ? { flags: [...v.flags] } : {}) }),
    argv: (a) => [a.type, a.source, a.target, ...(a.options !== undefined ? [a.options] : []), ...(a.flags?.length ? ['--flags', a.flags.join(',')] : [])],
    describe: (a) => `-t ${a.type}${a.options ? ` -o ${a.options}` : ''} ${a.source} ${a.target}`,
  }),
  umount: action({
    schema: pathOr({ path: { schema: path, required: true }, detach: bool() }),
    parse: (v) => (typeof v === 'string' ? { path: v } : { path: v.path, ...(v.detach ? { detach: true } : {}) }),
    argv: (a) => [a.path, ...(a.detach ? ['--detach'] : [])],
    describe: (a) => a.path,
  }),
  sethostname: action({ schema: scalar('the new hostname'), parse: (v) => ({ name: String(v) }), argv: (a) => [a.name], describe: (a) => a.name }),
  gethostname: action({ schema: noArgs, parse: () => ({}) }),
  kill: action({
    schema: oneOf([scalar('a pid'), obj({ pid: { schema: scalar('a pid'), required: true }, signal, wait: int({ min: 0, max: 600000, description: 'milliseconds to wait for it to exit' }) })]),
    parse: (v) =>
      typeof v === 'object'
        ? { pid: String(v.pid), signal: v.signal === undefined ? 'TERM' : String(v.signal), ...(v.wait !== undefined ? { waitMs: v.wait } : {}) }
        : { pid: String(v), signal: 'TERM' },
    argv: (a) => [a.pid, a.signal, ...(a.waitMs !== undefined ? ['--wait', String(a.waitMs)] : [])],
    describe: (a) => `-${a.signal} ${a.pid}`,
  }),
  setns: action({
    schema: pathOr({ path: { schema: path, required: true }, type: str({ enum: NS_FLAGS }) }),
    parse: (v) => (typeof v === 'string' ? { path: v } : { path: v.path, ...(v.type !== undefined ? { type: v.type } : {}) }),
    argv: (a) => [a.path, ...(a.type ? [a.type] : [])],
    describe: (a) => `${a.path}${a.type ? ` ${a.type}` : ''}`,
  }),
  sleep: action({ schema: int({ min: 0, max: 3_600_000, description: 'milliseconds' }), parse: (ms) => ({ ms }), argv: (a) => [String(a.ms)], describe: (a) => `${a.ms}ms` }),
  id: action({ schema: noArgs, parse: () => ({}) }),
};

type FieldsOf<D> = D extends AgentAction<infer A> ? A : never;
type RawOf<D> = D extends SuiteAction<infer R, unknown> ? R : never;
/** The mapping a suite writes for one action: one key of T (the schema checks there is one). */
type ItemOf<T> = { [K in keyof T]?: RawOf<T[K]> };

/** An action that may fail: its result is reported and the next action runs. */
const tryAction: SuiteAction<ItemOf<typeof BASIC_ACTIONS>, { action: Action }> = {
  // Defined by actionItem below, which holds this entry.
  schema: {
    describe: 'one action that may fail',
    check: (v, p, o) => basicActionItem.check(v, p, o),
    json: () => ({ $ref: '#/$defs/action', description: 'one action that may fail: its result is reported and the next action runs' }),
  },
  parse: (item) => ({ action: actionOf(item) }),
  argv: (a) => actionArgv(a.action),
  describe: (a) => describeAction(a.action),
};

const SUITE_ACTIONS = { ...BASIC_ACTIONS, try: tryAction };

/** The helper task a spawn step forks off; the loader makes it, a suite cannot name it. */
const spawnAction: AgentAction<{ name: string }> = { argv: (a) => [a.name], describe: (a) => a.name };

const ACTIONS = { ...SUITE_ACTIONS, spawn: spawnAction };

type Table = typeof ACTIONS;
export type ActionKind = keyof Table;
type ActionFields = { [K in ActionKind]: FieldsOf<Table[K]> };
/** One system-call level action the guest agent performs. Strings may hold ${variables}. */
export type Action<K extends ActionKind = ActionKind> = { [P in K]: { kind: P } & ActionFields[P] }[K];

type SuiteKind = keyof typeof SUITE_ACTIONS;
type SuiteRaw = { [K in SuiteKind]: RawOf<(typeof SUITE_ACTIONS)[K]> };
/** An action as a suite file writes it, after validation. */
export type ActionItem = ItemOf<typeof SUITE_ACTIONS>;

type SuiteSchemas = { [K in SuiteKind]: Schema<SuiteRaw[K]> };
// Object.fromEntries cannot know that the keys it gets are the table's own.
export const ACTION_SCHEMAS = Object.fromEntries(Object.entries(SUITE_ACTIONS).map(([k, d]) => [k, d.schema])) as SuiteSchemas;
export const ACTION_KEYS = Object.keys(ACTION_SCHEMAS);

const AGENT_TABLE: { [K in ActionKind]: AgentAction<ActionFields[K]> } = ACTIONS;
const SUITE_TABLE: { [K in SuiteKind]: SuiteAction<SuiteRaw[K], ActionFields[K]> } = SUITE_ACTIONS;

export function actionArgv<K extends ActionKind>(a: Action<K>): string[] {
  return [a.kind, ...(AGENT_TABLE[a.kind].argv?.(a) ?? [])];
}

export function describeAction<K extends ActionKind>(a: Action<K>): string {
  const detail = AGENT_TABLE[a.kind].describe?.(a);
  return detail === undefined ? a.kind : `${a.kind} ${detail}`;
}

const isSuiteKind = (k: string): k is SuiteKind => ACTION_KEYS.includes(k);

function parseAction<K extends SuiteKind>(kind: K, raw: SuiteRaw[K]): Action<K> {
  return { kind, ...SUITE_TABLE[kind].parse(raw) };
}

/** The Action of a validated item (an action mapping, or a step holding an action key). */
export function actionOf(item: ActionItem): Action {
  const kind = Object.keys(item).find(isSuiteKind)!;
  return parseAction(kind, item[kind]!);
}

// ---------------------------------------------------------------------------------------
// Where actions stand in a suite

export const actionItem = named(
  'action',
  refine(obj(ACTION_SCHEMAS, { description: 'one action: a mapping with a single action key' }), (v, path, out) => {
    exactlyOne(v, path, out, ACTION_KEYS, 'an action');
  }),
);
/** The action inside "try": any action but another "try". */
const basicActionItem = refine(actionItem, (v, path, out) => {
  if ('try' in v) out.push({ path: [...path, 'try'], atKey: true, message: '"try" applies to one action; it cannot hold another "try"' });
});
/** Pre-steps must succeed, so "try" has no place among them. */
export const actionList = (description: string) =>
  refine(list(actionItem, { description }), (v, path, out) => {
    v.forEach((a, i) => {
      if ('try' in a) out.push({ path: [...path, i, 'try'], atKey: true, message: 'a pre-step must succeed: "try" is for the actions of "do"' });
    });
  });
