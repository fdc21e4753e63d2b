// The build-log summary, on logs recorded from real 2.6.20 builds.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { describeFailure, summariseBuildLog } from '../../harness/kernel/buildlog.js';
import { repoPath } from '../../harness/common/paths.js';

const log = (n: string) => readFile(repoPath('test', 'fixtures', 'build-logs', n), 'utf8');

t.test('a successful build: objects and warnings counted, no errors', async (t) => {
  const s = summariseBuildLog(await log('2.6.20-gcc12-ok.log'));
  t.same(s.errors, []);
  t.ok(s.compiled > 200, `counted ${s.compiled} objects`);
  t.ok(s.warnings > 100, `counted ${s.warnings} warnings`);
});

t.test('PIE compiler: the compiler error is the summary', async (t) => {
  const s = summariseBuildLog(await log('2.6.20-gcc12-no-pie-fail.log'));
  t.equal(describeFailure(s), 'cc1: error: code model kernel does not support PIC mode');
});

t.test('link failure: the undefined reference is the summary', async (t) => {
  const s = summariseBuildLog(await log('2.6.20-gcc12-link-fail.log'));
  t.match(describeFailure(s), /undefined reference to `__mutex_lock_slowpath'/);
});

t.test('unpatched tree under make 4: make\'s own complaint is the summary', async (t) => {
  const s = summariseBuildLog(await log('2.6.20-gcc12-unpatched-fail.log'));
  t.match(describeFailure(s), /mixed implicit and normal rules/);
});

t.test('file:line errors come first, with a count of the rest', async (t) => {
  const s = summariseBuildLog('  CC      kernel/fork.o\nkernel/fork.c:1664:9: error: implicit declaration of function \'ns_container_clone\'\nkernel/fork.c:1700:2: error: expected \';\'\nmake[1]: *** [scripts/Makefile.build:1: kernel/fork.o] Error 1\n');
  t.equal(s.errors.length, 2);
  t.equal(describeFailure(s), "kernel/fork.c:1664:9: error: implicit declaration of function 'ns_container_clone' (and 1 more error)");
});
