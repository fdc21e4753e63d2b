// The subject on a debug SMP kernel (configs/trials/ns-container-debug-2.6.20.yaml): the
// ns-container suite and the stress suite run to a verdict on two CPUs with lock, slab and
// scheduling debugging, where a kernel warning would fail its case. Skipped, with the
// reason, when no 2.6.20 source can be had here.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

/** The stress suite's cases, counted in the file itself: one "  - name:" each under "cases:". */
async function stressCaseCount(): Promise<number> {
  const text = await readFile(repoPath('test', 'scenarios', 'ns-container-stress.yaml'), 'utf8');
  const cases = text.slice(text.indexOf('\ncases:\n'), text.lastIndexOf('\ncleanup:\n'));
  return cases.split('\n').filter((l) => l.startsWith('  - name: ')).length;
}

t.test('the debug trial runs both suites to a verdict on two CPUs', { skip: await sourceSkip('ns-container-debug-2.6.20') }, async (t) => {
  const out = repoPath('out', 'test', 'ns-container-debug-2.6.20');
  const r = await ktrial(['run', repoPath('configs', 'trials', 'ns-container-debug-2.6.20.yaml'), '--out', out]);
  if (r.code !== 0) t.comment(r.stderr.slice(-4000));
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  t.equal(r.code, 0, 'every case as expected (passed, or an expected failure tied to a finding)');
  t.equal(res.kernel.cpus, 2, 'two guest CPUs');
  const cases = res.cases.filter((c) => c.kind === 'case');
  const stress = cases.filter((c) => c.suite === 'ns-container-stress');
  t.equal(stress.length, await stressCaseCount(), 'every stress case has a verdict');
  t.ok(cases.filter((c) => c.suite === 'ns-container').length > 100, 'and the ns-container suite ran');
  t.same(
    cases.filter((c) => c.verdict === 'not-run').map((c) => c.name),
    [],
    'every case ran',
  );
  t.same(
    cases.filter((c) => c.warnings?.some((w) => !w.knownIssue)).map((c) => c.name),
    [],
    'no kernel warning that the trial does not list',
  );
  for (const c of cases.filter((c) => c.verdict === 'expected-failure')) t.match(c.knownIssue?.finding, /FINDINGS\.md#F\d+/, `${c.name} is tied to a finding`);
});
