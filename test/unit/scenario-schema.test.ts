// Scenario files: every problem is reported with file:line:column, and the JSON Schema
// shipped for editors is the one generated from the same definition.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { KtrialError } from '../../harness/common/errors.js';
import { loadSuite, parseSuite } from '../../harness/scenarios/load.js';
import { scenarioJsonSchemaText } from '../../harness/scenarios/schema.js';
import { substitute } from '../../harness/scenarios/vars.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The error's message lines ("file:line:col: text") for a file that must not load. */
function problems(text: string): string[] {
  try {
    parseSuite(text, 's.yaml');
  } catch (err) {
    if (!(err instanceof KtrialError)) throw err;
    if (err.cls !== 'bad-input') throw err;
    return err.message.split('\n').slice(1);
  }
  throw new Error('the file loaded, but it should not have');
}

const head = `name: demo
identities:
  user: {uid: 1000}
helpers:
  holder:
    do: [{unshare: uts}]
`;

t.test('a valid file loads', async (t) => {
  const s = parseSuite(`${head}cases:\n  - name: one\n    steps:\n      - unshare: uts\n`, 's.yaml');
  t.equal(s.name, 'demo');
  t.equal(s.cases.length, 1);
});

t.test('unknown keys are reported at the key, with the keys allowed there', async (t) => {
  const p = problems(`${head}cases:\n  - name: one\n    stepz:\n      - unshare: uts\n`);
  t.match(p.join('\n'), /^s\.yaml:9:5: unknown key "stepz" \(known keys here: name, description, requires, timeout, alone, vars, steps, cleanup\)$/m);
  t.match(p.join('\n'), /^s\.yaml:8:5: missing required key "steps"/m);
});

t.test('wrong types and bad values point at the value', async (t) => {
  const p = problems(`${head}timeout: soon\ncases:\n  - name: one\n    steps:\n      - unshare: utz\n        as: {uid: -1}\n        expect: EPRM\n`);
  const all = p.join('\n');
  t.match(all, /^s\.yaml:7:10: expected a whole number, got string "soon"/m);
  t.match(all, /^s\.yaml:11:18: "utz" is not a namespace flag \(did you mean uts\?\)/m);
  t.match(all, /^s\.yaml:12:19: -1 is below the minimum 0/m);
  t.match(all, /^s\.yaml:13:17: "EPRM" is not ok, error, any or an errno name \(did you mean EPERM\?\)/m);
});

t.test('a step needs exactly one thing to do', async (t) => {
  t.match(problems(`${head}cases:\n  - name: one\n    steps:\n      - expect: ok\n`).join('\n'), /^s\.yaml:10:9: a step needs one of: do, sh, tap, spawn, stop, unshare, clone/m);
  t.match(problems(`${head}cases:\n  - name: one\n    steps:\n      - unshare: uts\n        sethostname: x\n`).join('\n'), /^s\.yaml:11:9: a step has both "unshare" and "sethostname"; put several actions in a list under "do"/m);
  t.match(problems(`${head}cases:\n  - name: one\n    steps:\n      - sh: "true"\n        expect: EPERM\n`).join('\n'), /^s\.yaml:11:17: a sh step is judged by its exit status/m);
});

t.test('references: identities, helpers, helper instances and variables must be defined', async (t) => {
  const p = problems(`${head}cases:
  - name: one
    steps:
      - as: nobody-here
        unshare: uts
      - spawn: holdr
      - stop: never-started
      - read: /proc/\${pidd}/status
      - gethostname:
        capture: {host: output}
      - sethostname: "\${host}"
`).join('\n');
  t.match(p, /^s\.yaml:10:13: unknown identity "nobody-here" \(defined: root, nobody, user\)/m);
  t.match(p, /^s\.yaml:12:16: unknown helper "holdr" \(defined: holder\)/m);
  t.match(p, /^s\.yaml:13:15: no helper instance "never-started" was started before this step/m);
  t.match(p, /^s\.yaml:14:15: undefined variable \$\{pidd\}/m);
  t.notMatch(p, /host/, 'a captured variable is defined for later steps');
});

t.test('a variable is not defined before the step that captures it', async (t) => {
  const p = problems(`${head}cases:\n  - name: one\n    steps:\n      - sethostname: "\${host}"\n      - gethostname:\n        capture: {host: output}\n`).join('\n');
  t.match(p, /^s\.yaml:10:2[23]: undefined variable \$\{host\}/m);
});

t.test('variable values may use built-ins and earlier variables, not later ones', async (t) => {
  const p = problems(`${head}vars:\n  top: /c\n  a: "\${top}/a_\${case_index}"\ncases:\n  - name: one\n    vars: {dir: "\${top}/x_\${case_index}", late: "\${later}", later: y}\n    steps: [{mkdir: "\${dir}"}]\n`).join('\n');
  t.match(p, /^s\.yaml:9:[67]: undefined variable \$\{case_index\}/m, 'case_index is not known at suite level');
  t.match(p, /undefined variable \$\{later\}/);
  t.notMatch(p, /\$\{top\}|\$\{dir\}/);
});

t.test('a helper instance gives ${NAME.pid}; escaped $${...} is literal', async (t) => {
  const steps = (kill: string, sh: string) => `${head}cases:\n  - name: one\n    steps:\n      - spawn: holder\n      - kill: "${kill}"\n      - sh: "${sh}"\n      - stop: holder\n`;
  t.equal(parseSuite(steps('\${holder.pid}', 'echo $\${HOME}'), 's.yaml').cases.length, 1, 'a started helper\'s pid and an escaped reference load');
  t.match(problems(steps('\${holder.pidd}', 'echo $\${HOME}')).join('\n'), /undefined variable \$\{holder\.pidd\}/, 'a helper has only its pid');
  t.match(problems(steps('\${holder.pid}', 'echo \${HOME}')).join('\n'), /undefined variable \$\{HOME\}/, 'unescaped, ${HOME} is a reference');
  t.equal(substitute('kill \${holder.pid}; echo $\${HOME}', { 'holder.pid': '42' }), 'kill 42; echo \${HOME}', 'the pid is substituted, the escaped reference kept literally');
});

t.test('matrix problems: unknown names in expect, cells without an outcome', async (t) => {
  const p = problems(`${head}cases:
  - matrix:
      title: m
      actors: {root: root, user: user, ghost: nobody}
      actions:
        uts: {unshare: uts}
        ipc: {unshare: ipc}
      expect:
        root: ok
        user: {uts: EPERM, ipx: EPERM}
        admin: ok
`).join('\n');
  t.match(p, /^s\.yaml:16:28: unknown action "ipx" \(defined: uts, ipc\)/m);
  t.match(p, /^s\.yaml:17:9: unknown actor "admin" \(defined: root, user, ghost\)/m);
  t.match(p, /^s\.yaml:14:7: no expected outcome for actor "user", action "ipc"/m);
  t.match(p, /no expected outcome for actor "ghost", action "uts"/);
});

t.test('matrix actions may not set as or expect', async (t) => {
  const p = problems(`${head}cases:\n  - matrix:\n      title: m\n      actors: {root: root}\n      actions:\n        uts: {unshare: uts, expect: ok}\n      expect: {root: ok}\n`).join('\n');
  t.match(p, /^s\.yaml:12:29: "expect" is set by the matrix/m);
});

t.test('duplicate case names, also after matrix expansion', async (t) => {
  try {
    parseSuite(`${head}cases:\n  - name: "m: root uts"\n    steps: [{unshare: uts}]\n  - matrix:\n      title: m\n      actors: {root: root}\n      actions: {uts: {unshare: uts}}\n      expect: {root: ok}\n`, 's.yaml');
    t.fail('should not load');
  } catch (err) {
    t.match((err as KtrialError).message, /two cases are named "m: root uts" \(the first at s\.yaml:8:5\)/);
    t.match((err as KtrialError).where, { file: 's.yaml', line: 14 });
  }
});

t.test('malformed YAML names its place', async (t) => {
  try {
    parseSuite('name: x\ncases: [\n', 's.yaml');
    t.fail('should not load');
  } catch (err) {
    t.match((err as KtrialError).where, { file: 's.yaml', line: 3 });
  }
});

t.test('the shipped scenario files load', async (t) => {
  const s = await loadSuite(`${root}test/scenarios/namespaces.yaml`);
  t.equal(s.name, 'namespaces');
});

t.test('configs/schema/scenario.schema.json is the generated schema', async (t) => {
  const shipped = await readFile(`${root}configs/schema/scenario.schema.json`, 'utf8');
  t.equal(shipped, scenarioJsonSchemaText(), 'regenerate with: node dist/harness/write-schemas.js');
});

t.test('load: on agent actions only, thread alone, and the agent options it gives', async (t) => {
  t.match(problems(`${head}cases:\n  - name: one\n    steps:\n      - sh: "true"\n        load: {workers: 2}\n`), [/s\.yaml:11:9: load applies to agent actions/]);
  t.match(problems(`${head}cases:\n  - name: one\n    steps:\n      - unshare: uts\n        load: {thread: true, repeat: 2}\n`), [/thread runs the actions once in one thread/]);
  t.match(problems(`${head}cases:\n  - name: one\n    steps:\n      - unshare: uts\n        load: {workers: 65}\n`), [/s\.yaml:11:25: 65 is above the maximum 64/]);
  const s = parseSuite(`${head}vars: {a: "7"}\ncases:\n  - name: one\n    steps:\n      - write: {path: /x, data: "{each}"}\n        load: {each: "\${a},8", repeat: 3, timer: 1000}\n`, 's.yaml');
  const c = s.cases[0]!;
  t.ok(c.kind === 'case' && c.def.steps[0]!.load?.each === '${a},8');
  const { commandLine, stepCommand } = await import('../../harness/scenarios/agent.js');
  const step = c.kind === 'case' ? c.def.steps[0]! : undefined;
  t.equal(commandLine(stepCommand({ ...step!, load: { ...step!.load, each: '7,8' } }, '/a', 'tag')), "/a --each 7,8 --repeat 3 --timer 1000 --tag tag write /x '{each}'");
});
