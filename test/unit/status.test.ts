import t from 'tap';
import { overallStatus } from '../../harness/report/index.js';
import type { CaseResult } from '../../harness/scenarios/index.js';

const c = (extra: Partial<CaseResult>): CaseResult => ({ suite: 's', name: 'n', index: 1, verdict: 'passed', seconds: 0, steps: [], ...extra }) as CaseResult;

t.test('a lost guest or a crash makes the run a kernel-side failure', async (t) => {
  t.equal(overallStatus([c({}), c({ verdict: 'failed', lost: 'the guest stopped answering' })]), 'kernel');
  t.equal(overallStatus([c({ verdict: 'failed', crash: { reason: 'panic', excerpt: '' } })]), 'kernel');
  t.equal(overallStatus([c({ verdict: 'failed' })]), 'unexpected');
  t.equal(overallStatus([c({})]), 'ok');
  t.equal(overallStatus([c({})], { class: 'host', message: 'qemu missing' }), 'host');
});
