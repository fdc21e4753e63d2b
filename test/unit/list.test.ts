// `ktrial list`, through the real command line: the catalogue, a suite's and a trial's
// cases with --only, the trial's expected failures marked, and files that are neither.
import t from 'tap';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { ktrial } from '../helpers/cli.js';
import { repoPath } from '../../harness/common/paths.js';

const lines = (text: string) => text.split('\n').filter(Boolean);

const SUITE = `name: s
cases:
  - name: alpha one
    steps: [{gethostname: }]
  - name: alpha two
    steps: [{gethostname: }]
  - matrix:
      title: grid
      name: "\${actor} \${action}"
      actors: {a: root, b: root}
      actions: {x: {gethostname: }, y: {gethostname: }}
      expect: {"*": ok}
`;

t.test('without an argument: every trial and suite file, by the name it gives itself', async (t) => {
  const r = await ktrial(['list']);
  t.equal(r.code, 0);
  for (const dir of [repoPath('configs', 'trials'), repoPath('test', 'scenarios')]) {
    for (const f of (await readdir(dir)).filter((f) => f.endsWith('.yaml'))) {
      const { name } = load(await readFile(join(dir, f), 'utf8')) as { name: string };
      t.match(r.stdout, new RegExp(`^ {2}${name} +\\S*${f.replace('.', '\\.')}`, 'm'), `${f} is listed as ${name}`);
    }
  }
});

t.test('a suite file: its cases in order, as suite/name, selected by --only as run selects them', async (t) => {
  const file = join(await mkdtemp(join(tmpdir(), 'ktrial-list-')), 's.yaml');
  await writeFile(file, SUITE);
  const all = await ktrial(['list', file]);
  t.equal(all.code, 0);
  t.same(lines(all.stdout), ['s/alpha one', 's/alpha two', 's/grid: a x', 's/grid: a y', 's/grid: b x', 's/grid: b y']);
  t.equal(all.stderr.trim(), '6 of 6 cases');
  t.same(lines((await ktrial(['list', file, '--only', 'alpha*'])).stdout), ['s/alpha one', 's/alpha two'], 'a glob on the name');
  t.same(lines((await ktrial(['list', file, '--only', 's/grid: ? y'])).stdout), ['s/grid: a y', 's/grid: b y'], 'a glob on suite/name');
  const two = await ktrial(['list', file, '--only', 'alpha one', '--only', '*b x']);
  t.same(lines(two.stdout), ['s/alpha one', 's/grid: b x'], 'several --only select their union');
  t.equal(two.stderr.trim(), '2 of 6 cases selected by --only');
});

t.test('a trial: the cases of its suites, those it expects to fail marked', async (t) => {
  const r = await ktrial(['list', repoPath('test', 'fixtures', 'trials', 'mixed.yaml'), '--only', 'mixed/*']);
  t.equal(r.code, 0);
  // test/fixtures/trials/mixed.yaml lists these two as expected failures (the second by a glob).
  t.same(
    lines(r.stdout).filter((l) => l.endsWith('(expected failure)')),
    ['mixed/an unprivileged user sets the hostname  (expected failure)', 'mixed/uid 0 without CAP_SYS_ADMIN cannot set the hostname  (expected failure)'],
  );
  t.notOk(lines(r.stdout).some((l) => l.startsWith('crash/')), '--only left out the other suite');
});

t.test('a file that is neither a trial nor a suite is bad input, exit 2', async (t) => {
  const json = await ktrial(['list', repoPath('package.json')]);
  t.equal(json.code, 2);
  t.match(json.stderr, /package\.json is neither a trial nor a scenario suite/);
  const fragment = await ktrial(['list', repoPath('configs', 'fragments', 'guest-modern.config')]);
  t.equal(fragment.code, 2);
  t.match(fragment.stderr, /guest-modern\.config is neither a trial nor a scenario suite: it is not YAML/);
  const missing = await ktrial(['list', '/nonexistent/trial.yaml']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /cannot read trial or scenario file \/nonexistent\/trial\.yaml/);
});
