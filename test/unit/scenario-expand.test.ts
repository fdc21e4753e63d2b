// Matrix expansion: one case per cell, readable names, the right outcome per cell
// (exact names before "*"), requirements and steps composed from actor, action and target.
import t from 'tap';
import { commandLine, stepCommand } from '../../harness/scenarios/agent.js';
import { expandSuite, stepLabel } from '../../harness/scenarios/expand.js';
import { parseSuite } from '../../harness/scenarios/load.js';

const suite = parseSuite(
  `name: m
requires: [CONFIG_NAMESPACES]
identities:
  nosys: {uid: 0, caps: {drop: [CAP_SYS_ADMIN]}}
  user: {uid: 1000, gid: 100, groups: [100, 101]}
cases:
  - name: plain
    steps: [{gethostname: }]
  - matrix:
      title: attach
      requires: [CONFIG_CONTAINER_NS]
      vars: {top: /c}
      setup:
        - mkdir: /c/\${target}
      actors:
        root: root
        nosys: nosys
        user: {as: user, pre: [{join: /c}], vars: {who: plain-user}}
      actions:
        self: {write: {path: "/c/\${target}/tasks", data: self}}
        other:
          write: {path: "/c/\${target}/tasks", data: "1"}
          requires: [CONFIG_PID_NS]
      targets:
        child: {vars: {dir: /c/child}}
        sibling:
          cleanup: [{rmdir: /c/sibling}]
      expect:
        root: ok
        nosys: {self: ok, "*": EPERM}
        user:
          "*": {child: ok, "*": EPERM}
          other: {"*": EPERM}
      timeout: 5
`,
  'm.yaml',
);
const cases = expandSuite(suite);

t.test('one case per cell, in actor, action, target order', async (t) => {
  t.equal(cases.length, 1 + 3 * 2 * 2);
  t.same(
    cases.map((c) => [c.index, c.name]),
    [
      [1, 'plain'],
      [2, 'attach: root self child'],
      [3, 'attach: root self sibling'],
      [4, 'attach: root other child'],
      [5, 'attach: root other sibling'],
      [6, 'attach: nosys self child'],
      [7, 'attach: nosys self sibling'],
      [8, 'attach: nosys other child'],
      [9, 'attach: nosys other sibling'],
      [10, 'attach: user self child'],
      [11, 'attach: user self sibling'],
      [12, 'attach: user other child'],
      [13, 'attach: user other sibling'],
    ],
  );
});

t.test('each cell gets its outcome; exact names win over "*" level by level', async (t) => {
  const outcome = (name: string) => {
    const c = cases.find((x) => x.name === name)!;
    const e = c.steps[c.steps.length - 1]!.expect;
    return e.outcome === 'errno' ? e.errno : e.outcome;
  };
  t.equal(outcome('attach: root other sibling'), 'ok');
  t.equal(outcome('attach: nosys self child'), 'ok');
  t.equal(outcome('attach: nosys other child'), 'EPERM');
  t.equal(outcome('attach: user self child'), 'ok');
  t.equal(outcome('attach: user self sibling'), 'EPERM');
  t.equal(outcome('attach: user other child'), 'EPERM', 'the exact action entry wins over "*"');
});

t.test('a cell points at the line of the outcome that applies to it', async (t) => {
  t.equal(cases.find((c) => c.name === 'attach: root self child')!.where!.line, 29);
  t.equal(cases.find((c) => c.name === 'attach: user self child')!.where!.line, 32);
  t.equal(cases.find((c) => c.name === 'attach: user other sibling')!.where!.line, 33);
});

t.test('requirements, timeout, variables and steps are composed per cell', async (t) => {
  const c = cases.find((x) => x.name === 'attach: user other sibling')!;
  t.same(c.requires, ['CONFIG_NAMESPACES', 'CONFIG_CONTAINER_NS', 'CONFIG_PID_NS']);
  t.equal(c.timeoutMs, 5000);
  t.same(c.vars, { actor: 'user', action: 'other', target: 'sibling', top: '/c', who: 'plain-user' });
  t.same(c.matrix, { title: 'attach', actor: 'user', action: 'other', target: 'sibling' });
  t.equal(c.steps.length, 2, 'matrix setup, then the cell step');
  t.equal(c.cleanup.length, 1, 'the target cleanup');
  const step = c.steps[1]!;
  t.equal(step.as.uid, 1000);
  t.same(step.pre, [{ kind: 'join', dir: '/c' }], 'the actor pre-step');
  t.equal(stepLabel(step), 'write "1" to /c/${target}/tasks as user after join /c');
  t.equal(commandLine(stepCommand(step, '/usr/bin/ktrial-agent', 'm.13')), "/usr/bin/ktrial-agent --uid 1000 --gid 100 --groups 100,101 --tag m.13 pre join /c -- write '/c/${target}/tasks' 1");
  const plain = cases[0]!;
  t.same(plain.requires, ['CONFIG_NAMESPACES'], 'suite requirements apply to every case');
  t.equal(plain.timeoutMs, 60_000, 'the default case timeout');
});

t.test('identities turn into agent options', async (t) => {
  const c = cases.find((x) => x.name === 'attach: nosys self child')!;
  t.equal(commandLine(stepCommand(c.steps[1]!, 'A', 't')), "A --uid 0 --gid 0 --caps -CAP_SYS_ADMIN --tag t write '/c/${target}/tasks' self");
  t.equal(stepLabel(c.steps[1]!), 'write "self" to /c/${target}/tasks as nosys');
});

t.test('a name template makes the case names', async (t) => {
  const s = parseSuite(
    `name: n\ncases:\n  - matrix:\n      title: who\n      name: "\${actor} may not \${action}"\n      actors: {root: root}\n      actions: {uts: {unshare: uts}}\n      expect: {root: ok}\n`,
    'n.yaml',
  );
  t.same(
    expandSuite(s).map((c) => c.name),
    ['who: root may not uts'],
  );
});
