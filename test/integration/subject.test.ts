// The subject end to end: 2.6.20 + containers core + the ns container patch, and the
// control kernel without CONFIG_CONTAINER_NS, each with its own suite. Skipped, with the
// reason, when no 2.6.20 source can be had here.
import t from 'tap';
import { referenceRun } from '../helpers/reference.js';
import { sourceSkip } from '../helpers/trees.js';
import type { RunResults } from '../../harness/report/index.js';

async function runTrial(name: string): Promise<{ code: number; res: RunResults; stderr: string }> {
  const r = await referenceRun(name);
  return { code: r.code, res: r.results, stderr: r.stderr };
}

const count = (res: RunResults, verdict: string) => res.cases.filter((c) => c.verdict === verdict).length;

t.test('the subject and its control on 2.6.20', { skip: await sourceSkip('ns-container-2.6.20') }, async (t) => {
  const ns = await runTrial('ns-container-2.6.20');
  if (ns.code !== 0) t.comment(ns.stderr.slice(-4000));
  t.equal(ns.code, 0, 'every case as expected (passed, or an expected failure tied to a finding)');
  t.equal(ns.res.kernel.release, '2.6.20');
  t.ok(count(ns.res, 'passed') > 100, `${count(ns.res, 'passed')} cases passed`);
  t.equal(count(ns.res, 'failed'), 0, 'no unexplained failure');
  t.equal(count(ns.res, 'not-run'), 0, 'every case ran');
  for (const c of ns.res.cases.filter((c) => c.verdict === 'expected-failure')) {
    t.match(c.knownIssue?.finding, /FINDINGS\.md#F\d+/, `${c.name} is tied to a finding`);
  }

  const control = await runTrial('ns-container-control-2.6.20');
  if (control.code !== 0) t.comment(control.stderr.slice(-4000));
  t.equal(control.code, 0, 'the control kernel meets its own expectations');
  t.ok(count(control.res, 'passed') > 50, `${count(control.res, 'passed')} control cases passed`);
  t.equal(count(control.res, 'not-run'), 0);
});
