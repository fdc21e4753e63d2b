// Linux 2.6.24, which merged the 2007 patch as the ns cgroup subsystem, runs the same
// ns-container suite through the trial's variables to a verdict: every case as expected,
// the cases where 2.6.24 departs from the patch being expected failures tied to findings.
// Skipped, with the reason, when no 2.6.24 source can be had here.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

t.test('the ns-container suite on Linux 2.6.24 (ns cgroup subsystem)', { skip: await sourceSkip('ns-cgroup-2.6.24') }, async (t) => {
  const out = repoPath('out', 'test', 'ns-cgroup-2.6.24');
  const r = await ktrial(['run', repoPath('configs', 'trials', 'ns-cgroup-2.6.24.yaml'), '--out', out]);
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  if (r.code !== 0) t.comment(r.stderr.slice(-4000));
  t.equal(r.code, 0, 'every case as expected (passed, or an expected failure tied to a finding)');
  t.equal(res.kernel.release, '2.6.24');
  const count = (verdict: string) => res.cases.filter((c) => c.verdict === verdict).length;
  t.equal(count('not-run'), 0, 'every case ran: the suite\'s requirements name the cgroup options through the trial');
  t.equal(count('failed'), 0, 'no unexplained failure');
  t.ok(count('passed') > 100, `${count('passed')} cases passed`);
  const findings = await readFile(repoPath('test', 'scenarios', 'FINDINGS.md'), 'utf8');
  const expected = res.cases.filter((c) => c.verdict === 'expected-failure');
  t.ok(expected.length > 0, `${expected.length} expected failures`);
  for (const c of expected) {
    const id = /FINDINGS\.md#(F\d+)$/.exec(c.knownIssue?.finding ?? '')?.[1];
    t.ok(id && new RegExp(`^## ${id}\\. `, 'm').test(findings), `${c.name} is tied to a finding of FINDINGS.md (${id})`);
  }
  // The interface is 2.6.24's: the suite read /proc/<pid>/cgroup and mounted -t cgroup.
  const unbound = res.cases.find((c) => c.kind === 'case' && c.name.startsWith('unbound:'));
  t.match(unbound?.steps.map((s) => s.command).join('\n'), /mount cgroup ktrial \/c cpuacct --flags remount/);
  t.match(unbound?.steps.map((s) => s.command).join('\n'), /read \/proc\/self\/cgroup/);
});
