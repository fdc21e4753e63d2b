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
