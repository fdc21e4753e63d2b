import t from 'tap';
import { repoPath } from '../../harness/common/paths.js';
import { KernelConfig } from '../../harness/config/kconfig.js';
import { compatSeriesFor, eraFor, optionsWithImplied, parseVersion } from '../../harness/eras/eras.js';
import { expandSuite } from '../../harness/scenarios/expand.js';
import { loadSuite } from '../../harness/scenarios/load.js';
import { missingRequirements } from '../../harness/scenarios/verdicts.js';

t.test('every supported version finds exactly its era', async (t) => {
  t.equal(eraFor(parseVersion('2.6.20'))?.name, '2.6.20-2.6.23');
  t.equal(eraFor(parseVersion('2.6.23'))?.name, '2.6.20-2.6.23');
  t.equal(eraFor(parseVersion('2.6.24'))?.name, '2.6.24');
  t.equal(eraFor(parseVersion('3.6.11'))?.name, '2.6.25-3.6');
  t.equal(eraFor(parseVersion('6.1.192'))?.name, '3.17-current');
  t.equal(eraFor(parseVersion('2.6.19')), undefined, 'older than 2.6.20 is not supported');
});

t.test('compat series follow the compiler', async (t) => {
  const era = eraFor(parseVersion('2.6.20'))!;
  t.same(compatSeriesFor(era, 12).map((c) => c.dir), ['2.6.20']);
  t.same(compatSeriesFor(era, 4), [], 'a gcc 4 needs no compat series');
  t.equal(eraFor(parseVersion('2.6.24'))!.impliedOptions?.CONFIG_UTS_NS, 'y');
  t.equal(parseVersion('2.6.20-rc1').extra, '-rc1');
});

t.test('the namespaces suite against the recorded 2.6.20 and 2.6.24 smoke configs: which cases run', async (t) => {
  // test/fixtures/configs/ holds the configs the compat series were verified with
  // (kernel-patches/compat/README.md). 2.6.20 has UTS_NS and IPC_NS options; 2.6.24 has
  // none (they are always built), so its UTS and IPC cases run only through the era's
  // implied options. Neither has PID, NET or USER namespaces.
  const suite = await loadSuite(repoPath('test', 'scenarios', 'namespaces.yaml'));
  const cases = expandSuite(suite);
  const config = async (name: string) => KernelConfig.load(repoPath('test', 'fixtures', 'configs', name));
  const notRun = (options: KernelConfig) => cases.filter((c) => missingRequirements(c.requires, options).length).map((c) => c.name);
  const withoutNewerNamespaces = ['unshare PID as root', 'unshare NET as root', 'unshare USER as root', 'an unprivileged user may unshare UTS inside a new user namespace'];

  const c2620 = await config('2.6.20-smoke.config');
  t.equal(c2620.get('CONFIG_UTS_NS'), 'y');
  t.same(notRun(optionsWithImplied(eraFor(parseVersion('2.6.20'))!.name, c2620)), withoutNewerNamespaces, '2.6.20');

  const c2624 = await config('2.6.24-smoke.config');
  t.equal(c2624.get('CONFIG_UTS_NS'), undefined, '2.6.24 has no CONFIG_UTS_NS');
  t.equal(c2624.get('CONFIG_PID_NS'), undefined, 'nor CONFIG_PID_NS');
  t.same(notRun(optionsWithImplied(eraFor(parseVersion('2.6.24'))!.name, c2624)), withoutNewerNamespaces, '2.6.24 with the era\'s implied options');
  t.ok(notRun(c2624).includes('unshare UTS as root'), 'without them its UTS cases would not run');
  t.ok(cases.some((c) => c.name === 'without PID namespaces CLONE_NEWPID is refused' && !notRun(c2624).includes(c.name)), 'the case for kernels without PID namespaces runs');
});
