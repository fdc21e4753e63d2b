// Reading a recorded lava-run log back: the guest's raw records and lava-test-case results,
// judged by the host's runner; the guest's own verdicts (images/lava/judge.awk, told to LAVA)
// are the independent side they are checked against. A log with a record missing or altered
// must not be judged as if it were whole.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { KernelConfig } from '../../harness/config/kconfig.js';
import { repoPath } from '../../harness/common/paths.js';
import { judgeSuite, lavaDisagreements, parseLavaLog } from '../../harness/lava/ingest.js';
import { definitionName } from '../../harness/lava/job.js';
import { lavaCaseId, planSuite } from '../../harness/lava/plan.js';
import { compile } from '../../harness/scenarios/program.js';
import { loadSuite } from '../../harness/scenarios/load.js';

const LOG = repoPath('test', 'fixtures', 'lava', 'namespaces-6.1.lava-run.log');
// The smoke trial's required namespace options (configs/trials/smoke-debian-6.1.yaml).
const config = new KernelConfig(['CONFIG_UTS_NS', 'CONFIG_IPC_NS', 'CONFIG_PID_NS', 'CONFIG_NET_NS', 'CONFIG_USER_NS'].map((o) => [o, 'y'] as const));

t.test('lava-run log: records and results', async (t) => {
  const log = parseLavaLog(await readFile(LOG, 'utf8'));
  t.same([...log.suites.keys()], ['namespaces']);
  const s = log.suites.get('namespaces')!;
  t.equal(s.records[0]!.command, '/usr/bin/ktrial-agent --version', 'the agent check');
  t.match(s.records[0]!.stdout, /"protocol":1/);
  t.equal(s.records[1]!.command, '/usr/bin/ktrial-agent --tag namespaces.setup gethostname');
  t.match(s.records[1]!.stdout, /"output":"ktrial"/);
  t.equal(log.jobResult, 'pass');
  const mine = log.results.filter((r) => r.definition === '0_ktrial-namespaces');
  t.equal(mine.length, 25, 'setup and 24 cases');
  t.same(mine.find((r) => r.case.startsWith('8_'))?.result, 'skip', 'the case whose requirement is not met');
});

t.test('the host judges the records as the guest did, case by case', async (t) => {
  const suite = await loadSuite(repoPath('test', 'scenarios', 'namespaces.yaml'));
  const plan = planSuite(compile(suite, { kernelConfig: config }));
  const log = parseLavaLog(await readFile(LOG, 'utf8'));
  const cases = await judgeSuite(plan, log.suites.get('namespaces'), {});
  t.equal(cases.filter((c) => c.kind === 'case').length, 24);
  t.same(cases.filter((c) => c.verdict === 'not-run').map((c) => c.notRun?.cause), ['missing-requirement']);
  t.ok(cases.filter((c) => c.verdict !== 'not-run').every((c) => c.verdict === 'passed'));
  t.same(lavaDisagreements(cases, log.results, definitionName, lavaCaseId), []);
  // Each step's judgement rests on its record: the setup captured the hostname from it.
  const c4 = cases.find((c) => c.index === 4)!;
  t.equal(c4.steps.at(-1)!.actual, 'ok, output "ktrial"');
});

t.test('an altered or cut log is not judged as whole', async (t) => {
  const suite = await loadSuite(repoPath('test', 'scenarios', 'namespaces.yaml'));
  const plan = planSuite(compile(suite, { kernelConfig: config }));
  const log = parseLavaLog(await readFile(LOG, 'utf8'));
  const s = log.suites.get('namespaces')!;
  // Case 12 expects EPERM; its record now says the call succeeded.
  const start12 = s.starts.find((x) => x.key === '12')!.at;
  s.records[start12]!.stdout = s.records[start12]!.stdout.replace(/"ok":false,[^}]*/, '"ok":true');
  const altered = await judgeSuite(plan, s, {});
  t.equal(altered.find((c) => c.index === 12)!.verdict, 'failed', 'the host judges the record, not the guest\'s word');
  t.match(lavaDisagreements(altered, log.results, definitionName, lavaCaseId), [/uid 0 without CAP_SYS_ADMIN.*"pass".*failed/]);

  // Without the records of case 5, it is not run with the reason; the cases after it are judged.
  const cut = { records: [...s.records], starts: s.starts };
  const start5 = s.starts.find((x) => x.key === '5')!.at;
  cut.records[start5] = { ...cut.records[start5]!, command: 'something else' };
  const judged = await judgeSuite(plan, cut, {});
  const c5 = judged.find((c) => c.index === 5)!;
  t.equal(c5.verdict, 'not-run');
  t.equal(c5.notRun?.cause, 'not-in-guest');
  t.match(c5.reason, /diverged/);
  t.equal(judged.find((c) => c.index === 6)!.verdict, 'passed');

  const none = await judgeSuite(plan, undefined, {});
  t.ok(none.every((c) => c.verdict === 'not-run'));
});
