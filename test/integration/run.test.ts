// Whole trial runs through the command line: build (cached), boot under QEMU, the
// namespaces suite over SSH, reports. The 2.6 trials are skipped, with the reason, when
// their source cannot be had here.
import t, { type Test } from 'tap';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { alive } from '../helpers/proc.js';
import { referenceRun } from '../helpers/reference.js';
import { sourceSkip } from '../helpers/trees.js';
import { expectPinnedIdentity } from '../helpers/bzimage.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';
import { resolveSource } from '../../harness/source/source.js';
import { Progress } from '../../harness/common/progress.js';

/** A trial's plain run (shared with the other tests that read it), or a run with `extra` options. */
async function runTrial(name: string, extra: string[] = []) {
  if (!extra.length) return referenceRun(name);
  const out = repoPath('out', 'test', `run-${name}`);
  const r = await ktrial(['run', repoPath('configs', 'trials', `${name}.yaml`), ...extra, '--out', out]);
  const text = await readFile(join(out, 'results.json'), 'utf8').catch(() => undefined);
  if (!text) throw new Error(`no results.json (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return { ...r, results: JSON.parse(text) as RunResults, out };
}

async function checkRun(t: Test, name: string, expectNotRun: string[], extra: string[] = []): Promise<string> {
  const { results, out, ...r } = await runTrial(name, extra);
  if (r.code !== 0) t.comment(r.stderr.slice(-4000));
  t.equal(r.code, 0, `${name}: exit code 0 (every case as expected)`);
  t.equal(results.status, 'ok');
  const byName = new Map(results.cases.map((c) => [c.name, c]));
  t.equal(byName.get('unshare UTS as root')?.verdict, 'passed', 'unshare UTS passes');
  t.equal(byName.get('a hostname set in a new UTS namespace is not seen outside')?.verdict, 'passed');
  t.equal(byName.get('uid 0 without CAP_SYS_ADMIN cannot set the hostname')?.verdict, 'passed');
  const notRun = results.cases.filter((c) => c.verdict === 'not-run').map((c) => c.name).sort();
  t.same(notRun, expectNotRun.sort(), 'exactly the cases whose kernel options are missing are not run');
  for (const f of ['results.tap', 'junit.xml', 'summary.txt', 'console.log']) t.ok((await stat(join(out, f))).size > 0, `${f} written`);
  t.match(await readFile(join(out, 'results.tap'), 'utf8'), /^TAP version 14/);
  t.type(results.kernel.qemuPid, 'number', 'the run reports its QEMU pid');
  t.notOk(alive(Number(results.kernel.qemuPid)), 'no QEMU of the run remains');
  t.match(results.kernel.accelerator, /^(tcg|kvm)$/, 'the accelerator used is reported');
  return out;
}

t.test('Debian 6.1 smoke trial runs the namespaces suite', async (t) => {
  const out = await checkRun(t, 'smoke-debian-6.1', ['without PID namespaces CLONE_NEWPID is refused']);
  const first = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  const command = first.rerun?.command ?? [];
  t.same(command.slice(0, 3), ['npx', 'ktrial', 'run'], 'results.json holds the re-run command');
  t.match(first.rerun?.ktrial, /^[0-9a-f]{12}/, 'and the ktrial commit it needs');
  t.ok(command.includes('--source') && command.includes('--cc'), 'the command pins the source and the compiler');
  // The re-run line, run as it is, must rebuild nothing: the same kernel inputs, a cache hit.
  const again = repoPath('out', 'test', 'rerun-smoke-debian-6.1');
  const r = await ktrial([...command.slice(2), '--out', again]);
  if (r.code !== 0) t.comment(r.stderr.slice(-3000));
  t.equal(r.code, 0, 'the re-run line runs');
  const second = JSON.parse(await readFile(join(again, 'results.json'), 'utf8')) as RunResults;
  t.equal(second.kernel.cached, true, 'the re-run is a kernel cache hit');
  t.equal(second.kernel.source, first.kernel.source, 'from the same source');
  t.equal(second.kernel.config, first.kernel.config, 'with the same final config');
  t.same(second.cases.map((c) => [c.name, c.verdict]), first.cases.map((c) => [c.name, c.verdict]), 'and the same verdicts');
});

/** A selftest source of Debian's linux-source-6.12, the tree the recipe builds 6.12's selftests from. */
async function selftest612(rel: string): Promise<string> {
  const ctx = { progress: new Progress(() => {}), signal: new AbortController().signal };
  const tree = await resolveSource({ kind: 'debian', name: 'linux-source-6.12', pkg: 'linux-source-6.12' }, undefined, ctx);
  return readFile(join(tree.dir, 'tools/testing/selftests', rel), 'utf8');
}

/** The harness test names a kselftest_harness.h source defines: TEST(x) is global.x, TEST_F(f, x) is f.x. */
async function harnessTests(rel: string): Promise<string[]> {
  return [...(await selftest612(rel)).matchAll(/^TEST(?:_F)?\((?:(\w+), )?(\w+)\)/gm)].map((m) => `${m[1] ?? 'global'}.${m[2]}`);
}

/** The tests a kselftest.h source plans: ksft_set_plan(N), or one per `.name =` entry of its tests[] table. */
async function plan612(rel: string): Promise<number> {
  const src = await selftest612(rel);
  const fixed = /ksft_set_plan\((\d+)\)/.exec(src);
  if (fixed) return Number(fixed[1]);
  if (src.includes('ksft_set_plan(ARRAY_SIZE(tests))')) return [...src.matchAll(/^\s*\.name = /gm)].length;
  throw new Error(`no plan read from ${rel}`);
}

// One run of the 6.12 trial (its kernel built once, just before, by the shared reference run):
// the namespaces suite, the core selftests and 6.12's nsfs, pid_namespace and pidfd selftests.
t.test('Debian 6.12 smoke trial: the namespaces suite and 6.12\'s own selftests, every case passed', async (t) => {
  const out = await checkRun(t, 'smoke-debian-6.12', ['without PID namespaces CLONE_NEWPID is refused']);
  const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  t.match(results.kernel.release, /^6\.12\./, 'the 6.12 kernel ran');
  t.equal(results.kernel.cached, true, 'the run after the build is a kernel cache hit');
  const verdicts = (suite: string) => new Map(results.cases.filter((c) => c.suite === suite).map((c) => [c.name, c.verdict]));
  const points: Record<string, string[]> = {
    close_range_test: await harnessTests('core/close_range_test.c'),
    regression_enomem: await harnessTests('pid_namespace/regression_enomem.c'),
    pidfd_wait: await harnessTests('pidfd/pidfd_wait.c'),
    pidfd_getfd_test: await harnessTests('pidfd/pidfd_getfd_test.c'),
    pidfd_setns_test: await harnessTests('pidfd/pidfd_setns_test.c'),
  };
  const plans: Record<string, number> = {
    clone3: await plan612('clone3/clone3.c'),
    pidfd_test: await plan612('pidfd/pidfd_test.c'),
    pidfd_fdinfo_test: await plan612('pidfd/pidfd_fdinfo_test.c'),
    pidfd_open_test: await plan612('pidfd/pidfd_open_test.c'),
  };
  const programs: Record<string, string[]> = {
    'kselftest-core': ['close_range_test', 'clone3'],
    'kselftest-pidfd': ['nsfs_owner', 'nsfs_pidns', 'regression_enomem', 'pidfd_test', 'pidfd_fdinfo_test', 'pidfd_open_test', 'pidfd_poll_test', 'pidfd_wait', 'pidfd_getfd_test', 'pidfd_setns_test'],
  };
  for (const [suite, names] of Object.entries(programs)) {
    const got = verdicts(suite);
    t.ok(got.size > 0, `${suite} ran`);
    t.same([...got].filter(([, v]) => v !== 'passed'), [], `every case of ${suite} passed, none not run`);
    for (const name of names) {
      t.equal(got.get(name), 'passed', `${suite}: ${name} passed`);
      for (const point of points[name] ?? []) t.equal(got.get(`${name}/${point}`), 'passed', `${name}/${point} passed`);
      if (plans[name] !== undefined) t.equal([...got.keys()].filter((n) => n.startsWith(`${name}/`)).length, plans[name], `${name}: one case per test of its plan`);
    }
  }
  t.same([...verdicts('namespaces')].filter(([, v]) => v !== 'passed').map(([n]) => n), ['without PID namespaces CLONE_NEWPID is refused'], 'every namespaces case passed but the one for kernels without PID namespaces');
});

// 2.6 kernels have no PID, NET or USER namespaces configured: exactly those cases are not run.
// The 2.6.24 smoke trial runs on the kernel the ns cgroup trial builds (the same era, given
// with --kernel and its config), so that CI builds one 2.6.24 kernel, not two.
const NS_CGROUP_KERNEL = repoPath('out', 'test', 'run-ns-cgroup-kernel');
async function nsCgroupKernel(): Promise<string[]> {
  const dir = NS_CGROUP_KERNEL;
  const b = await ktrial(['build', repoPath('configs', 'trials', 'ns-cgroup-2.6.24.yaml'), '--out', dir, '-q']);
  if (b.code !== 0) throw new Error(`the ns cgroup kernel did not build (exit ${b.code}):\n${b.stderr.slice(-3000)}`);
  return ['--kernel', join(dir, 'bzImage'), '--config', join(dir, 'config')];
}

for (const [trial, release] of [
  ['smoke-2.6.20', '2.6.20'],
  ['smoke-2.6.24', '2.6.24'],
] as const) {
  t.test(`${trial} trial runs the namespaces suite`, { skip: await sourceSkip(trial) }, async (t) => {
    const out = await checkRun(t, trial, [
      'unshare PID as root',
      'unshare NET as root',
      'unshare USER as root',
      'an unprivileged user may unshare UTS inside a new user namespace',
    ], release === '2.6.24' ? await nsCgroupKernel() : []);
    // The era's compat series makes the build honour KBUILD_BUILD_*, so two builds are equal.
    await expectPinnedIdentity(t, release === '2.6.24' ? join(NS_CGROUP_KERNEL, 'bzImage') : join(out, 'bzImage'), release, trial);
  });
}
